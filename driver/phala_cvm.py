#!/usr/bin/env python3
"""Deploy driver: create, update or delete one CVM with the pinned `phala` CLI.

pulumi_command runs `python3 -I -S driver/phala_cvm.py <create|update|delete>` from the
project directory (that command string is a Command input: it must never change). Standard
library only: this runs in the engine's environment, not the program's venv.

Inputs arrive as environment variables (driver/protocol.py, read by driver/spec.py); the
Phala API key comes from the operator's environment or `phala login`, never from Pulumi
state. stdout carries exactly one JSON line with ids and status and nothing secret;
progress and errors go to stderr with every secret value scrubbed out.

The pieces: spec.py (inputs), deployer.py (the three verbs), waiting.py (polling the API),
api.py (reads), cli.py (running the CLI), env_handoff.py (the env through a pipe, never a
file), cvm_state.py (reading a CVM), health.py, scrub.py.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:  # run as a script: make `driver` importable
    sys.path.insert(0, str(PROJECT_DIR))

from driver import protocol  # noqa: E402
from driver.api import PhalaApi, phala_credentials  # noqa: E402
from driver.cli import PhalaCli  # noqa: E402
from driver.deployer import (  # noqa: E402
    Deployer,
    command_create,
    command_delete,
    command_update,
)
from driver.env_handoff import private_workdir  # noqa: E402
from driver.errors import DriverError, Interrupted  # noqa: E402
from driver.scrub import Scrubber  # noqa: E402
from driver.spec import POLL_SECONDS_VAR, check_env_reaches_the_container, read_spec  # noqa: E402

VERBS = ("create", "update", "delete")


def _raise_interrupted(signum: int, frame: FrameType | None) -> NoReturn:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    if len(argv) != 2 or argv[1] not in VERBS:
        print("usage: phala_cvm.py create|update|delete", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupted)
    signal.signal(signal.SIGINT, _raise_interrupted)
    scrub: Callable[[str], str] = Scrubber([environ.get(protocol.API_KEY, "")])
    try:
        spec = read_spec(environ)
        scrub = Scrubber([*spec.secret_values, environ.get(protocol.API_KEY, "")])
        if argv[1] != "delete":
            check_env_reaches_the_container(spec)
        api_key, api_prefix = phala_credentials(environ)
        if not api_key:
            raise DriverError(
                "no Phala Cloud API key: export PHALA_CLOUD_API_KEY=<key> in the shell that "
                "runs pulumi, or run `npx phala login` once"
            )
        scrub = Scrubber([*spec.secret_values, api_key])
        poll = float(environ.get(POLL_SECONDS_VAR, "3"))
        with private_workdir() as workdir:
            cli = PhalaCli(environ, workdir, scrub)
            deployer = Deployer(spec, cli, PhalaApi(api_key, api_prefix), scrub, poll)
            if argv[1] == "create":
                record = command_create(deployer, workdir, environ)
            elif argv[1] == "update":
                record = command_update(deployer, workdir, environ)
            else:
                command_delete(deployer, workdir, environ)
                record = None
        if record is not None:
            print(json.dumps(record, sort_keys=True), flush=True)
        return 0
    except DriverError as error:
        print(scrub(f"openclaw-phala: error: {error}"), file=sys.stderr, flush=True)
        return 1
    except Interrupted as interrupt:
        print(f"openclaw-phala: interrupted by {interrupt}", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv, os.environ))

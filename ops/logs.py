"""`ops logs <name>`: a CVM container's logs through the pinned `phala` CLI, by tenant name.

The seed ran `phala logs openclaw --cvm-id <id>` with the id looked up by hand;
here the CVM id and the container (`openclaw`, or `mux-server` for ``mux``) come
from the stack outputs. The CLI runs exactly as the deploy driver runs it
(driver/phala_cvm.py `PhalaCli`): the API key stays in the environment
(PHALA_CLOUD_API_KEY, or the `phala login` credentials it finds through
PHALA_CLOUD_DIR), never in argv; HOME and the working directory are an empty
private folder, so no phala.toml or ~/.ssh of the operator changes what runs.

The logs stream straight to our stdout (and the container's stderr channel, with
--stderr, to our stderr). The CLI's own failure line (`✗ ...`) becomes our one-line
error; any other line it writes to stderr is passed on with the API key scrubbed.

Lag: the seed's notes say `phala cvms logs` can lag behind the container, so right
after a rollout a missing line is not proof of anything; check the live state with
`ops exec <name> -- openclaw --version`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from functools import partial
from typing import IO, Any, Final, TextIO

from driver.api import phala_credentials
from driver.cli import PhalaCli, option
from driver.env_handoff import private_workdir
from driver.errors import DriverError
from driver.scrub import Scrubber
from ops import ConfigError, OperationError
from ops.attached import exit_status, run_attached
from ops.stack_outputs import StackOutputs
from ops.targets import CvmTarget, resolve_target

CONTAINER_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# How the pinned CLI marks the line it fails with (its `fail()` reporter).
CLI_FAILURE_MARK: Final = "✗"

OutputsLoader = Callable[[argparse.Namespace], StackOutputs]


def phala_logs_args(
    target: CvmTarget, *, tail: int | None, follow: bool, stderr: bool, container: str | None
) -> list[str]:
    """The `phala` arguments; nothing secret goes here."""
    # The CLI's parser takes a separate word starting with '-' as the next option: the CVM
    # id travels attached to its option, and the container (a positional) is checked.
    name = container or target.container
    if not CONTAINER_NAME.fullmatch(name):
        raise ConfigError(
            f"--container must be a container name (letters, digits, '_', '.', '-', not "
            f"starting with '-'), got {name[:60]!r}"
        )
    args = ["logs", name, option("cvm-id", target.cvm_id)]
    if tail is not None:
        args += ["--tail", str(tail)]
    if follow:
        args.append("--follow")
    if stderr:
        args.append("--stderr")
    return args


def _relay_stderr(
    stream: IO[bytes], sink: TextIO, scrub: Callable[[str], str], failures: list[str]
) -> None:
    for raw in stream:
        line = scrub(raw.decode("utf-8", "replace"))
        if line.lstrip().startswith(CLI_FAILURE_MARK):
            failures.append(line.strip().removeprefix(CLI_FAILURE_MARK).strip())
            continue
        sink.write(line)
        sink.flush()


def run_logs(
    arguments: argparse.Namespace, _stdout: TextIO, stderr: TextIO, *, load_outputs: OutputsLoader
) -> int:
    api_key, _prefix = phala_credentials(os.environ)
    if not api_key:
        raise ConfigError(
            "no Phala Cloud API key: export PHALA_CLOUD_API_KEY=<key>, or run `npx phala login`"
        )
    target = resolve_target(load_outputs(arguments), arguments.name)
    args = phala_logs_args(
        target,
        tail=arguments.tail,
        follow=arguments.follow,
        stderr=arguments.stderr,
        container=arguments.container,
    )
    scrub = Scrubber([api_key])
    failures: list[str] = []
    relays: list[threading.Thread] = []

    def start_relay(process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        relay = threading.Thread(
            target=_relay_stderr, args=(process.stderr, stderr, scrub, failures), daemon=True
        )
        relay.start()
        relays.append(relay)

    with private_workdir() as workdir:
        try:
            cli = PhalaCli(os.environ, workdir, scrub)
        except DriverError as error:
            raise ConfigError(str(error)) from None
        # stdout is inherited: logs stream through as they arrive, even with --follow.
        sys.stdout.flush()
        process = run_attached(
            [str(cli.cli), *args],
            env=cli.env,
            cwd=workdir,
            stderr=subprocess.PIPE,
            on_started=start_relay,
        )
        for relay in relays:
            relay.join(timeout=10)
    status = exit_status(process.returncode)
    if status != 0:
        reason = failures[-1] if failures else f"exit {status}, no message"
        raise OperationError(f"phala logs for {target.label} (CVM {target.cvm_id}): {reason}")
    return 0


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of lines, got {text!r}")
    return int(text)


def add_parser(
    commands: argparse._SubParsersAction[Any],
    add_outputs_source: Callable[[argparse.ArgumentParser], None],
    load_outputs: OutputsLoader,
) -> None:
    logs = commands.add_parser(
        "logs",
        help="a CVM container's logs through the pinned phala CLI",
        description="Print (or follow) the logs of a tenant's openclaw container, or of "
        "the mux-server container for 'mux', by CVM id from the stack outputs. Uses "
        "PHALA_CLOUD_API_KEY (or `phala login`). Phala's logs can lag behind the "
        "container: confirm live state with `exec <name> -- openclaw --version`.",
    )
    logs.add_argument("name", help="tenant name as in the stack outputs, or 'mux'")
    logs.add_argument(
        "-n", "--tail", type=_non_negative_int, metavar="N", help="only the last N lines"
    )
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep streaming new lines (Ctrl-C stops)"
    )
    logs.add_argument(
        "--stderr", action="store_true", help="include the container's stderr (to our stderr)"
    )
    logs.add_argument(
        "--container", metavar="NAME", help="another container of the CVM than the default"
    )
    add_outputs_source(logs)
    logs.set_defaults(handler=partial(run_logs, load_outputs=load_outputs))

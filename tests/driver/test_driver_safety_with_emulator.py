"""The driver's safety promises, each checked where it can fail: the real pinned `phala`
CLI against the API emulator, with the harness of driver_sandbox.py.

- a failed `phala cvms delete` fails the delete (Pulumi would otherwise drop a CVM that
  still runs with the tenant's secrets, and a replacement would adopt it by name);
- while the CLI runs, its env file is 0600 in a 0700 directory, and its HOME is an empty
  directory inside that private directory, never the operator's;
- a secret echoed by the API in an error body reaches stderr only as [secret].
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from components.compose import openclaw_compose
from driver import protocol
from driver.scrub import REDACTED

# The emulator and sandbox fixtures come through tests/driver/conftest.py.
from tests.driver.driver_sandbox import (
    OPENCLAW_IMAGE,
    Sandbox,
    driver_inputs,
    recorded_stdout,
    secret_env,
)
from tests.support.emulator_seed import seed_cvm
from tests.support.phala_cli import PHALA_BIN

DISTINCT_SECRET = "mk-echoed-by-the-api-5c0ffee5c0ffee5c0ffee"


# --------------------------------------------------------------------------- CLI probe


@dataclass(frozen=True)
class CliSighting:
    """What one `phala` call saw when it started: its HOME, where its env came from, and
    the folder holding its compose file."""

    home: Path
    home_entries: list[str]
    env_source: str
    env_source_type: str  # GNU stat's %F of what the path leads to
    compose_dir: Path
    compose_dir_mode: int


def probing_cli(sandbox: Sandbox) -> tuple[dict[str, str | None], Path]:
    """A wrapper that records HOME, what `--env=F` (or `--env F`, `-e F`) leads to, and the
    compose file's folder and its mode (GNU stat), then execs the real CLI; returns the
    driver overrides and the log path."""
    log = sandbox.scratch / "cli-probe.log"
    wrapper = sandbox.scratch / "phala-probe-wrapper"
    wrapper.write_text(
        "#!/bin/sh\n"
        'env_file=""; compose=""; previous=""\n'
        'for argument in "$@"; do\n'
        '  case "$previous" in -e|--env) env_file="$argument" ;; esac\n'
        '  case "$argument" in --env=*) env_file="${argument#--env=}" ;; esac\n'
        '  case "$argument" in --compose=*) compose="${argument#--compose=}" ;; esac\n'
        '  previous="$argument"\n'
        "done\n"
        'if [ -n "$env_file" ]; then\n'
        "  {\n"
        '    printf "%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n" "$HOME" "$(ls -A "$HOME" | tr "\\n" " ")" \\\n'
        '      "$env_file" "$(stat -L -c %F "$env_file")" \\\n'
        '      "$(dirname "$compose")" "$(stat -c %a "$(dirname "$compose")")"\n'
        f"  }} >> {shlex.quote(str(log))}\n"
        "fi\n"
        f'exec {shlex.quote(str(PHALA_BIN))} "$@"\n'
    )
    wrapper.chmod(0o755)
    return {protocol.CLI_OVERRIDE: str(wrapper)}, log


def sightings(log: Path) -> list[CliSighting]:
    result = []
    for line in log.read_text().splitlines() if log.exists() else []:
        home, entries, env_source, env_type, compose_dir, dir_mode = line.split("\t")
        result.append(
            CliSighting(
                Path(home),
                entries.split(),
                env_source,
                env_type,
                Path(compose_dir),
                int(dir_mode, 8),
            )
        )
    return result


@contextmanager
def permissive_umask() -> Iterator[None]:
    """Run the driver under umask 000, so only its own modes keep files private."""
    before = os.umask(0)
    try:
        yield
    finally:
        os.umask(before)


# --------------------------------------------------------------------------- file modes, HOME


def test_the_env_reaches_the_cli_through_a_pipe_and_its_files_sit_in_a_0700_dir(
    sandbox: Sandbox,
) -> None:
    overrides, log = probing_cli(sandbox)
    inputs = driver_inputs("ella-gateway")

    with permissive_umask():
        result = sandbox.run("create", inputs, overrides=overrides)

    assert result.returncode == 0, result.stderr
    (sighting,) = sightings(log)
    # The secrets travel through an inherited pipe: never a file, on any disk.
    assert sighting.env_source.startswith("/dev/fd/")
    assert sighting.env_source_type == "fifo"
    assert oct(sighting.compose_dir_mode) == oct(0o700)
    assert sighting.compose_dir.is_relative_to(sandbox.tmpdir)
    assert not sighting.compose_dir.exists()  # removed once the driver is done


def test_the_cli_gets_an_empty_home_inside_the_private_dir_never_the_operators(
    sandbox: Sandbox,
) -> None:
    # The sandbox HOME holds a decoy ~/.ssh key the CLI would pick up by itself.
    assert (sandbox.home / ".ssh" / "id_ed25519.pub").exists()
    overrides, log = probing_cli(sandbox)

    result = sandbox.run("create", driver_inputs("finn-gateway"), overrides=overrides)

    assert result.returncode == 0, result.stderr
    (sighting,) = sightings(log)
    assert sighting.home != sandbox.home
    assert sighting.home.parent == sighting.compose_dir  # inside the 0700 workdir
    assert sighting.home_entries == []


# --------------------------------------------------------------------------- delete


def test_a_failed_delete_fails_and_a_rerun_deletes_the_cvm(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    cvm = seed_cvm(emulator, "gail-gateway", openclaw_compose(OPENCLAW_IMAGE))
    inputs = driver_inputs("gail-gateway")
    failures = [(503, "Service Unavailable (test)"), (403, "Forbidden: not your CVM (test)")]

    for status, detail in failures:
        emulator.inject_error("DELETE", r"^/cvms/", status=status, detail=detail, times=None)
        failed = sandbox.run("delete", inputs, recorded_stdout(cvm))
        emulator.reset_faults()

        assert failed.returncode == 1, status
        assert failed.stdout == ""
        assert f"deleting CVM {cvm.vm_uuid} failed: " in failed.stderr
        assert f"{detail} (exit 1)" in failed.stderr
        assert [c.vm_uuid for c in emulator.cvms()] == [cvm.vm_uuid]

    rerun = sandbox.run("delete", inputs, recorded_stdout(cvm))

    assert rerun.returncode == 0, rerun.stderr
    assert emulator.cvms() == []
    assert emulator.count("DELETE", r"^/cvms/") == len(failures) + 1


# --------------------------------------------------------------------------- final scrub


def test_a_secret_echoed_in_a_get_error_leaves_the_driver_only_as_redacted(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    inputs = driver_inputs("hugo-gateway", env=secret_env({"MASTER_KEY": DISTINCT_SECRET}))
    # The driver's own GET (the adoption lookup), not the CLI: only the final scrub of the
    # exit message stands between this error body and the operator's terminal.
    echoed = f"bad search near {DISTINCT_SECRET} with key {emulator.api_key}"
    emulator.inject_error("GET", r"^/apps$", status=400, detail=echoed)

    result = sandbox.run("create", inputs)

    assert result.returncode == 1
    assert result.stdout == ""
    exit_message = result.stderr.strip().splitlines()[-1]
    assert exit_message == (
        f"openclaw-phala: error: HTTP 400: bad search near {REDACTED} with key {REDACTED}"
    )
    assert DISTINCT_SECRET not in result.stderr
    assert emulator.count("GET", r"^/apps$") == 1
    assert emulator.count("POST") == 0

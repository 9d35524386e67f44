"""A driver killed outright (SIGKILL, as pulumi-command's Cancel does: Go's
exec.CommandContext kills the process, no handler runs) leaves no secret on disk at any
stage, takes its `phala` CLI with it, and the next run converges."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from components.compose import openclaw_compose
from tests.driver.driver_sandbox import (
    MASTER_KEY,
    OPENCLAW_IMAGE,
    OPENCLAW_IMAGE_V2,
    REDPILL_KEY,
    Sandbox,
    driver_inputs,
    recorded_stdout,
    wait_until,
)
from tests.support.emulator_seed import seed_cvm

SECRETS = (MASTER_KEY, REDPILL_KEY)


def secrets_on_disk(*roots: Path) -> list[str]:
    """Every file under the roots that holds a secret, named with the secret's start."""
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                found += [f"{path}: {s[:6]}..." for s in SECRETS if s.encode() in data]
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent's wait is missing.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_when(
    sandbox: Sandbox, process: subprocess.Popen[str], ready: Callable[[], bool], what: str
) -> None:
    try:
        wait_until(ready, what, timeout=60)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)


@pytest.mark.parametrize("stage", ["create-cli", "create-wait", "update-cli", "delete-cli"])
def test_a_driver_killed_at_any_stage_leaves_no_secret_and_no_cli(
    sandbox: Sandbox, stage: str, tmp_path: Path
) -> None:
    emulator = sandbox.emulator
    cli_log = sandbox.logging_cli()
    name = f"kill-{stage}"
    # Each stage holds the driver where it is to be killed: its CLI waiting on a request the
    # emulator delays, or the driver itself polling a CVM that does not boot.
    if stage == "create-cli":
        emulator.inject_delay("POST", r"^/cvms$", 60)  # the commit hangs in the CLI
        process = sandbox.start("create", driver_inputs(name), overrides=cli_log.overrides)
        ready = lambda: emulator.in_flight("POST", r"^/cvms$") == 1  # noqa: E731
    elif stage == "create-wait":
        emulator.make_stuck(name)  # the CVM never boots; the driver polls
        process = sandbox.start("create", driver_inputs(name), overrides=cli_log.overrides)
        ready = lambda: emulator.count("GET", r"^/cvms/[0-9a-f]{32}$") >= 2  # noqa: E731
    elif stage == "update-cli":
        cvm = seed_cvm(emulator, name, openclaw_compose(OPENCLAW_IMAGE))
        emulator.inject_delay("PATCH", r"^/cvms/", 60)
        inputs = driver_inputs(name, compose=openclaw_compose(OPENCLAW_IMAGE_V2))
        process = sandbox.start("update", inputs, recorded_stdout(cvm), cli_log.overrides)
        ready = lambda: emulator.in_flight("PATCH") == 1  # noqa: E731
    else:
        cvm = seed_cvm(emulator, name, openclaw_compose(OPENCLAW_IMAGE))
        emulator.inject_delay("DELETE", r"^/cvms/", 60)
        inputs = driver_inputs(name)
        process = sandbox.start("delete", inputs, recorded_stdout(cvm), cli_log.overrides)
        ready = lambda: emulator.in_flight("DELETE") == 1  # noqa: E731

    kill_when(sandbox, process, ready, f"the driver at {stage}")

    # The CLI it started dies with it (the kernel's parent-death signal, sent as the driver
    # exits), while its request is still held: it did not simply finish, nor give up on its
    # own 30 s request timeout, which a longer wait here would let it do...
    for pid in cli_log.pids():
        wait_until(
            lambda pid=pid: not alive(pid), f"the CLI {pid} to die with its driver", timeout=5
        )
    if stage != "create-wait":
        assert emulator.in_flight() == 1
    # ...and nothing it left on disk holds a secret: the env never touched a file.
    assert secrets_on_disk(sandbox.tmpdir, sandbox.home, sandbox.scratch, tmp_path) == []
    leftovers = list(sandbox.tmpdir.iterdir())
    assert all(path.name.startswith("openclaw-phala-") for path in leftovers)

    # The request the CLI had sent is answered all the same; then the next run sweeps the
    # dead driver's folder and converges on what the service holds.
    emulator.release_delays()
    wait_until(lambda: emulator.in_flight() == 0, "the held request to be answered")
    emulator.reset_faults()
    if stage == "create-wait":
        emulator.finish_pending(name)
    verb = {"update-cli": "update", "delete-cli": "delete"}.get(stage, "create")
    if verb == "create":
        rerun = sandbox.run(verb, driver_inputs(name))
    else:
        rerun = sandbox.run(verb, inputs, recorded_stdout(cvm))
    assert rerun.returncode == 0, rerun.stderr
    assert list(sandbox.tmpdir.iterdir()) == []  # swept
    live = [c for c in emulator.cvms() if c.name == name and not c.deleted]
    assert len(live) == (0 if verb == "delete" else 1)

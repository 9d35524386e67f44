"""An interrupted `pulumi up`, and the documented recovery (README, "After an interrupted
`pulumi up`"), run command for command.

Each case interrupts a real `up` while CVMs are being created or updated, with Ctrl-C
(SIGINT to the whole foreground process group, as a terminal sends it) or with SIGKILL
of the whole process group (a killed CI job). The recovery must converge: one CVM per
name (the driver adopts what the killed run created), no driver workdir or secret left
in the temp directory, no pending operation left in state, and a clean
`--expect-no-changes` preview.

A SIGKILL can land between the two writes that save a checkpoint on a `file://` backend:
gocloud.dev's fileblob (v0.46.1-0.20260810195832-b5401c07b5f1, as pulumi v3.274.0's go.mod
pins it) empties the checkpoint's metadata sidecar before writing it
(blob/fileblob/attrs.go:42-53 `setAttrs`: os.Create, then encode; called from
fileblob.go:831 `writerWithSidecar.Close` before the rename), and every later command then
fails with `failed to load checkpoint: EOF`. The SIGKILL cases leave the sidecar as such a
kill does, so the README's step for it runs every time, not when the kill happens to land
there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from driver.env_handoff import WORKDIR_PREFIX
from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiResult, PulumiWorkspace, kill_group
from tests.support.engine_stacks import STACK, local_stack_config
from tests.support.secret_scan import files_under, scan_files
from tests.support.stack_configs import master_key_for

TENANTS = ("halted-agent-0", "halted-agent-1", "halted-agent-2")
IMAGE_V2 = "h4x3rotab/openclaw-cvm@sha256:" + "7" * 64
WAIT_FOR_WORK_SECONDS = 60
# What every command says once a kill left a checkpoint's sidecar empty.
EMPTIED_SIDECAR = "failed to load checkpoint: EOF"
LOCKED = "currently locked"


@pytest.fixture
def slow_emulator() -> PhalaCloudEmulator:
    # Deploys that take seconds leave time to interrupt them half-way.
    with PhalaCloudEmulator(provision_seconds=2, update_seconds=2) as running:
        yield running


@pytest.fixture
def stack(engine_dir: Path, slow_emulator: PhalaCloudEmulator, tmp_path: Path) -> PulumiWorkspace:
    workspace = PulumiWorkspace(engine_dir, tmp_path / "engine", slow_emulator)
    config, secret_keys = local_stack_config(TENANTS)
    workspace.init_stack(STACK)
    workspace.configure(STACK, config, secret_keys)
    yield workspace
    workspace.close()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_FOR_WORK_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def interrupt(workspace: PulumiWorkspace, how: str, started: Callable[[], bool]) -> None:
    """Start `pulumi up`, interrupt it once `started()` holds, and wait for it to end."""
    process = workspace.start("up", "--yes", "--skip-preview", "--stack", STACK)
    try:
        wait_until(started, "the deploy to start")
        if how == "SIGINT":
            os.killpg(process.pid, signal.SIGINT)
            process.communicate(timeout=240)
        else:
            kill_group(process)
            process.communicate()
            empty_the_checkpoint_sidecar(workspace)
    finally:
        kill_group(process)


def empty_the_checkpoint_sidecar(workspace: PulumiWorkspace) -> None:
    """The stack's checkpoint sidecar as a SIGKILL inside fileblob's setAttrs leaves it."""
    (sidecar,) = workspace.backend_dir.glob(f".pulumi/stacks/*/{STACK}.json.attrs")
    sidecar.write_bytes(b"")


def recover(workspace: PulumiWorkspace) -> list[str]:
    """The recovery the README documents, exactly; returns the commands it ran."""
    ran = []

    def step(*args: str) -> PulumiResult:
        ran.append(" ".join(args))
        return workspace.run(*args, "--stack", STACK)

    refresh = ("refresh", "--yes", "--clear-pending-creates")
    refreshed = step(*refresh)
    # Each condition the README names, in whichever order the commands report them.
    for _ in range(2):
        if refreshed.returncode == 0:
            break
        if EMPTIED_SIDECAR in refreshed.output:
            # The README's `find ~/.pulumi -name '*.attrs' -empty -delete`, on this backend.
            command = ["find", str(workspace.backend_dir / ".pulumi"), "-name", "*.attrs"]
            command += ["-empty", "-delete"]
            ran.append(" ".join(command))
            subprocess.run(command, check=True, timeout=60)
        elif LOCKED in refreshed.output:
            step("cancel", "--yes").expect_success()
        else:
            break
        refreshed = step(*refresh)
    refreshed.expect_success()
    step("up", "--yes").expect_success()
    step("preview", "--expect-no-changes").expect_success()
    return ran


def assert_converged(workspace: PulumiWorkspace, emulator: PhalaCloudEmulator, image: str) -> None:
    names = [cvm.name for cvm in emulator.cvms()]
    assert sorted(names) == sorted(TENANTS), f"duplicate or missing CVMs: {names}"
    assert all(cvm.status == "running" for cvm in emulator.cvms())
    assert all(image in cvm.docker_compose_file for cvm in emulator.cvms())
    deployment = workspace.run("stack", "export", "--stack", STACK).expect_success().json
    assert not deployment["deployment"].get("pending_operations"), "operations left pending"
    assert not list(workspace.tmpdir.glob(f"{WORKDIR_PREFIX}*")), "a driver workdir was left"
    secrets = {f"{t} masterKey": master_key_for(t) for t in TENANTS}
    leftovers = files_under([workspace.tmpdir])
    assert scan_files(leftovers, secrets, base=workspace.root) == []


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_an_up_interrupted_while_creating_recovers(
    stack: PulumiWorkspace, slow_emulator: PhalaCloudEmulator, how: str
) -> None:
    interrupt(stack, how, lambda: len(slow_emulator.cvms()) >= 1)
    ran = recover(stack)
    # A killed run leaves its lock behind, and here its emptied sidecar; Ctrl-C lets pulumi
    # release the one and finish the other.
    assert ("cancel --yes" in ran) == (how == "SIGKILL"), ran
    assert any(" -empty -delete" in command for command in ran) == (how == "SIGKILL"), ran
    assert_converged(stack, slow_emulator, "openclaw-cvm@sha256:" + "a" * 64)


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_an_up_interrupted_while_updating_recovers(
    stack: PulumiWorkspace, slow_emulator: PhalaCloudEmulator, how: str
) -> None:
    stack.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()
    stack.write_plain_config(STACK, {"openclawImage": IMAGE_V2})
    slow_emulator.clear_log()
    interrupt(stack, how, lambda: slow_emulator.requests("PATCH") != [])
    ran = recover(stack)
    assert ("cancel --yes" in ran) == (how == "SIGKILL"), ran
    assert any(" -empty -delete" in command for command in ran) == (how == "SIGKILL"), ran
    assert_converged(stack, slow_emulator, IMAGE_V2)

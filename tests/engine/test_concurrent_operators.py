"""Two operators at once: a second `up` on a stack that is being deployed fails fast with
the lock message and changes nothing; two stacks in one backend deploy side by side."""

from __future__ import annotations

import time
from pathlib import Path

from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import local_stack_config

WAIT_SECONDS = 60


def configure(workspace: PulumiWorkspace, stack: str, tenants: tuple[str, ...]) -> None:
    config, secret_keys = local_stack_config(tenants)
    workspace.init_stack(stack)
    workspace.configure(stack, config, secret_keys)


def test_a_second_up_on_a_locked_stack_fails_fast_and_changes_nothing(
    engine_dir: Path, tmp_path: Path
) -> None:
    with PhalaCloudEmulator(provision_seconds=3) as emulator:
        workspace = PulumiWorkspace(engine_dir, tmp_path / "engine", emulator)
        try:
            configure(workspace, "shared", ("first-agent",))
            first = workspace.start("up", "--yes", "--skip-preview", "--stack", "shared")
            deadline = time.monotonic() + WAIT_SECONDS
            while not emulator.cvms():
                assert time.monotonic() < deadline, "the first up never started"
                time.sleep(0.1)
            provisions = len(emulator.requests("POST", r"^/cvms/provision$"))

            second = workspace.run("up", "--yes", "--skip-preview", "--stack", "shared")
            assert second.returncode != 0
            assert "the stack is currently locked by 1 lock(s)" in second.output
            assert second.seconds < 30, "the second up must fail fast, not wait"
            assert len(emulator.requests("POST", r"^/cvms/provision$")) == provisions

            first.communicate(timeout=240)
            assert first.returncode == 0
            assert [cvm.name for cvm in emulator.cvms()] == ["first-agent"]
        finally:
            workspace.close()


def test_two_stacks_in_one_backend_deploy_side_by_side(engine_dir: Path, tmp_path: Path) -> None:
    with PhalaCloudEmulator(provision_seconds=6) as emulator:
        workspace = PulumiWorkspace(engine_dir, tmp_path / "engine", emulator)
        try:
            configure(workspace, "east", ("east-agent",))
            configure(workspace, "west", ("west-agent",))
            east = workspace.start("up", "--yes", "--skip-preview", "--stack", "east")
            west = workspace.start("up", "--yes", "--skip-preview", "--stack", "west")
            deadline = time.monotonic() + WAIT_SECONDS
            while len(emulator.cvms()) < 2:  # both provisioned before either finished
                assert time.monotonic() < deadline, "the two stacks did not run side by side"
                assert east.poll() is None or west.poll() is None
                time.sleep(0.1)
            assert east.poll() is None and west.poll() is None, "they ran one after the other"
            east.communicate(timeout=240)
            west.communicate(timeout=240)
            assert (east.returncode, west.returncode) == (0, 0)
            assert sorted(cvm.name for cvm in emulator.cvms()) == ["east-agent", "west-agent"]
        finally:
            workspace.close()

"""Ctrl-C under the real engine with the faithful command stand-in: the engine calls
Cancel on every provider (pkg resource/deploy/deployment_executor.go), and the command
provider's Cancel SIGKILLs each running deploy driver, whose Create then fails. What the
driver leaves behind and how the next run recovers is tests/engine/test_interrupted_up.py.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from driver import protocol
from emulators.phala import PhalaCloudEmulator
from standins.command_provider import go_quote
from tests.support.engine_harness import PulumiWorkspace, kill_group
from tests.support.engine_stacks import STACK, local_stack_config

WAIT_SECONDS = 120


def test_ctrl_c_sigkills_the_running_drivers_and_fails_their_creates(
    engine_dir: Path, tmp_path: Path
) -> None:
    # A boot long enough to interrupt the driver while it waits. Under dash (which forks
    # for `sh -c`) the killed shell's driver finishes its wait, and the engine's Create
    # returns only then, as Go's cmd.Wait waits for the output pipe: so not longer.
    with PhalaCloudEmulator(provision_seconds=20, update_seconds=20) as emulator:
        workspace = PulumiWorkspace(engine_dir, tmp_path / "engine", emulator)
        process = None
        try:
            config, secret_keys = local_stack_config(("cancel-agent",))
            workspace.init_stack(STACK)
            workspace.configure(STACK, config, secret_keys)
            process = workspace.start("up", "--yes", "--skip-preview", "--stack", STACK)
            deadline = time.monotonic() + WAIT_SECONDS
            while not emulator.cvms():  # the driver has provisioned: it is waiting now
                assert process.poll() is None and time.monotonic() < deadline, "no driver ran"
                time.sleep(0.1)
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C at a terminal
            stdout, stderr = process.communicate(timeout=WAIT_SECONDS)
        finally:
            if process is not None:
                kill_group(process)
            workspace.close()
    output = stdout + stderr
    assert process.returncode != 0
    assert f"signal: killed: running {go_quote(protocol.CREATE_COMMAND)}" in output, output

"""An `up` stopped half way (SIGTERM, as Ctrl-C) stops everything it started: the local APIs
and the engine with its plugins and the deploy drivers; `down` then removes its folder."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from sandbox.folder import SandboxFolder
from sandbox.lifecycle import MARKER_VAR
from sandbox.processes import Recorded, kill_group, processes_with_env
from tests.sandbox.conftest import SCRIPT, MemoryPlace, run_sandbox

REPO = Path(__file__).resolve().parents[2]


def test_an_up_stopped_while_the_engine_deploys_leaves_nothing_running(
    memory_place: MemoryPlace, engine_dir: Path, oracle_dir: Path
) -> None:
    process = subprocess.Popen(
        [str(SCRIPT), "up", "--plugins", "standins"],
        cwd=REPO,
        env=memory_place.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            # The engine has begun creating CVMs: the driver and the CLI are at work.
            if "command:local:Command openclaw-mux-deploy creating" in line:
                os.kill(process.pid, signal.SIGTERM)
                break
        remaining = process.communicate(timeout=120)[0]
    finally:
        if process.poll() is None:
            kill_group(process)
    lines += remaining.splitlines()
    assert process.returncode == 130, "\n".join(lines)
    assert any("up failed: stopping what it started" in line for line in lines)

    folder = SandboxFolder(memory_place.sandbox_dir)
    services = folder.read_state()["services"]
    assert set(services) == {"phala", "cloudflare"}
    recorded = [Recorded(n, int(e["pid"]), int(e["started"])) for n, e in services.items()]
    assert [r.name for r in recorded if r.alive()] == []
    assert processes_with_env(f"{MARKER_VAR}={memory_place.sandbox_dir}") == []

    status = run_sandbox("status", env=memory_place.env)
    assert status.returncode == 1 and "not complete" in status.text
    down = run_sandbox("down", env=memory_place.env)
    assert down.returncode == 0 and not memory_place.sandbox_dir.exists()

"""The engine harness stops everything a `pulumi` started, though pulumi gives each
plugin a process group of its own (no engine needed: a stand-in process tree)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support.engine_harness import kill_group, kill_processes_with_env

# Like pulumi: a child in a process group of its own (a plugin), which starts a
# grandchild (the program) in the same group, then all of them wait.
TREE = """
import os, subprocess, sys, time
plugin = subprocess.Popen(
    [sys.executable, "-c",
     "import subprocess, sys, time\\n"
     "program = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\\n"
     "print(program.pid, flush=True)\\n"
     "time.sleep(600)"],
    stdout=subprocess.PIPE, text=True, process_group=0,
)
print(plugin.pid, plugin.stdout.readline().strip(), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has stopped; only its parent's wait is missing


def _wait_until_gone(pids: list[int]) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


def test_kill_group_also_stops_plugins_in_process_groups_of_their_own() -> None:
    pulumi = subprocess.Popen(
        [sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert pulumi.stdout is not None
    plugin, program = (int(pid) for pid in pulumi.stdout.readline().split())
    try:
        assert os.getpgid(plugin) != os.getpgid(pulumi.pid)  # out of reach of pulumi's group

        kill_group(pulumi)

        assert _wait_until_gone([plugin, program]) == []
    finally:
        for pid in (plugin, program):
            if _alive(pid):
                os.kill(pid, 9)


def test_orphans_carrying_a_workspaces_marker_are_found_and_stopped(tmp_path: Path) -> None:
    marker = f"OPENCLAW_HARNESS_TEST_MARK={tmp_path}"
    name, value = marker.split("=", 1)
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        env={**os.environ, name: value},
        start_new_session=True,
    )
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        env={**os.environ, name: value + "-another-workspace"},
        start_new_session=True,
    )
    try:
        assert kill_processes_with_env(marker) == [orphan.pid]
        assert orphan.wait(timeout=10) == -9
        assert bystander.poll() is None
    finally:
        for process in (orphan, bystander):
            process.kill()
            process.wait()

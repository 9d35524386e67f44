"""Starting and stopping processes by id, never by name.

Every process the sandbox (or a test) starts gets a session, and so a process group, of its
own (`start_new_session=True`); it is stopped by that group's id. Pulumi starts each plugin
in a group of its own (cmdutil.RegisterProcessGroup), so stopping a `pulumi` reads its tree
first and stops every group in it. A process that outlives the command that started it (a
service of the sandbox) is recorded with its start time, so a recorded pid that the system
has since given to another process is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def stop_group(process: subprocess.Popen[Any]) -> None:
    """SIGTERM the process's group, SIGKILL it if it lingers. Members that outlive the
    leader (a server's workers) are stopped too."""
    if process.poll() is None or group_alive(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if group_alive(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the group exists, though not ours to signal
        return True
    return True


def kill_group(process: subprocess.Popen[Any]) -> None:
    """Stop a `pulumi` and everything it started (plugins, the program, the driver): the
    tree is read first, then every group in it is killed."""
    if process.poll() is None:
        kill_tree(process.pid)
    process.wait(timeout=30)


def kill_tree(pid: int) -> None:
    """SIGKILL the group of `pid` and the group of each of its descendants."""
    groups = {pid}
    for child in descendants(pid):
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(child))
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


def process_table() -> dict[int, int]:
    """pid -> parent pid, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields follow the last ")".
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in process_table().items():
        children.setdefault(parent, []).append(pid)
    found: list[int] = []
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def processes_with_env(marker: str) -> list[int]:
    """Every process (but this one) whose environment holds `marker`, a `NAME=value` line."""
    needle = marker.encode() + b"\0"
    found: list[int] = []
    for pid in process_table():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes() + b"\0"
        except OSError:
            continue
        if needle in environ:
            found.append(pid)
    return found


def kill_processes_with_env(marker: str) -> list[int]:
    """Kill every process whose environment holds `marker`: what a workspace's runs left
    behind, orphans included. Returns the pids killed."""
    killed: list[int] = []
    for pid in processes_with_env(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/pid/stat), or
    None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


@dataclass(frozen=True)
class Recorded:
    """A long-lived process the sandbox started: its id (also its group's) and start time."""

    name: str
    pid: int
    started: int  # clock ticks since boot, from /proc/<pid>/stat

    @classmethod
    def of(cls, name: str, process: subprocess.Popen[Any]) -> Recorded:
        started = start_time(process.pid)
        if started is None:
            raise RuntimeError(f"{name} (pid {process.pid}) exited at once")
        return cls(name, process.pid, started)

    def alive(self) -> bool:
        """Still running, and still the process that was recorded (not a reused pid)."""
        return start_time(self.pid) == self.started and not is_zombie(self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM its group and its descendants' groups, then SIGKILL what lingers."""
        if not self.alive():
            return
        tree = [self.pid, *descendants(self.pid)]
        groups = {self.pid}
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                groups.add(os.getpgid(pid))
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_running(pid) for pid in tree):
            time.sleep(0.05)
        if any(_running(pid) for pid in tree):
            for group in groups:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, os.WNOHANG)  # reap it when it is our own child


def _running(pid: int) -> bool:
    return start_time(pid) is not None and not is_zombie(pid)

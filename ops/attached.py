"""Run a child (ssh, the phala CLI) attached to the operator's terminal.

The child shares our process group, so a Ctrl-C typed at the terminal reaches it
directly (ssh forwards it or exits; `phala logs --follow` stops streaming and exits
0). While it runs we ignore SIGINT ourselves, so its exit status, not a Python
KeyboardInterrupt, decides ours; a SIGTERM sent to us is passed on to it.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from types import FrameType


def exit_status(returncode: int) -> int:
    """A shell-style status: a child killed by signal N gives 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def run_attached(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stderr: int | None = None,
    on_started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv`, wait for it with SIGINT/SIGTERM handled as above, return the process."""
    process = subprocess.Popen(
        list(argv), env=dict(env) if env is not None else None, cwd=cwd, stderr=stderr
    )
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous: dict[int, object] = {}

    def forward(signum: int, _frame: FrameType | None) -> None:
        with suppress(ProcessLookupError):
            process.send_signal(signum)

    try:
        if in_main_thread:
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
            previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, forward)
        if on_started is not None:
            on_started(process)
        process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        if process.poll() is None:  # we are unwinding from an error: do not leave it behind
            process.kill()
            process.wait()
    return process

"""`python -m ops` run as an operator runs it: a separate process from the checkout."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_ops(
    *args: str,
    env: Mapping[str, str] | None,
    stdin: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run one ops command to the end; `env=None` inherits this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "ops", *args],
        cwd=REPO,
        env=None if env is None else dict(env),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def start_ops(*args: str, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """Start an ops command that runs until stopped, in a session of its own so the
    test can send it a terminal's Ctrl-C (SIGINT to its group) and stop it by its id."""
    return subprocess.Popen(
        [sys.executable, "-m", "ops", *args],
        cwd=REPO,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )

"""Running `./scripts/sandbox` as an operator does, in a folder of the test's own.

Each run gets the caller's environment without any vendor credential or endpoint (a
developer's shell may hold some; the refusal test sets them on purpose), with
OPENCLAW_SANDBOX_DIR pointing into a private folder in memory. Lines are read as the
command prints them, each marked with whether the command was still running then, so a
test can tell progress shown while it works from a report printed at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.folder import SANDBOX_DIR_VAR
from sandbox.processes import kill_group
from sandbox.vendor_guard import BACKEND_URL, VENDOR_CREDENTIALS, VENDOR_ENDPOINTS

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "sandbox"
COMMAND_TIMEOUT = 900.0
ARTIFACTS = REPO / "test-artifacts" / "sandbox"


@dataclass(frozen=True)
class Run:
    returncode: int
    lines: list[str]
    while_running: list[bool]  # per line: the command had not exited when it was read

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def clean_environment(extra: Mapping[str, str] = {}) -> dict[str, str]:
    unwanted = {*VENDOR_CREDENTIALS, *VENDOR_ENDPOINTS, BACKEND_URL, "PULUMI_CONFIG_PASSPHRASE"}
    unwanted |= {"PULUMI_CONFIG_PASSPHRASE_FILE", "OPENCLAW_SANDBOX_FIRST_LINE_SAID"}
    environ = {k: v for k, v in os.environ.items() if k not in unwanted}
    return {**environ, **extra}


def run_sandbox(*args: str, env: Mapping[str, str], timeout: float = COMMAND_TIMEOUT) -> Run:
    process = subprocess.Popen(
        [str(SCRIPT), *args],
        cwd=REPO,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    running: list[bool] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            running.append(process.poll() is None)
            lines.append(line.rstrip("\n"))
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            kill_group(process)
    return Run(process.returncode, lines, running)


@dataclass(frozen=True)
class MemoryPlace:
    """A private folder in memory for one module's sandbox, and the environment to run in."""

    root: Path
    env: dict[str, str]

    @property
    def sandbox_dir(self) -> Path:
        return self.root / "sandbox"


@pytest.fixture(scope="module")
def memory_place() -> Iterator[MemoryPlace]:
    root = Path("/dev/shm") / f"pytest-sandbox-{secrets.token_hex(4)}"
    root.mkdir(mode=0o700)
    place = MemoryPlace(root, clean_environment({SANDBOX_DIR_VAR: str(root / "sandbox")}))
    try:
        yield place
    finally:
        if place.sandbox_dir.exists():
            run_sandbox("down", env=place.env)
        shutil.rmtree(root, ignore_errors=True)

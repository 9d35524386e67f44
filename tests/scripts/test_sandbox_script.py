"""scripts/sandbox: help installs nothing; with no sandbox, `status` says so (exit 3) and
`down` has nothing to stop (exit 0); an unknown command is a usage error (exit 2)."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "sandbox"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    absent = Path("/dev/shm") / f"pytest-no-sandbox-{secrets.token_hex(4)}"
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=REPO,
        env={**os.environ, "OPENCLAW_SANDBOX_DIR": str(absent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_answers_without_installing_anything() -> None:
    for command in ("up", "rehearse", "status", "down"):
        shown = _run(command, "--help")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith(f"usage: ./scripts/sandbox {command}")
        assert "[sandbox]" not in shown.stderr  # no install step ran


def test_without_a_sandbox_status_says_so_and_down_has_nothing_to_stop() -> None:
    status = _run("status")
    assert status.returncode == 3
    assert "sandbox: not running (no folder at /dev/shm/pytest-no-sandbox-" in status.stdout
    down = _run("down")
    assert down.returncode == 0
    assert "nothing to stop" in down.stdout


def test_an_unknown_command_is_a_usage_error() -> None:
    wrong = _run("destroy")
    assert wrong.returncode == 2
    assert "invalid choice: 'destroy'" in wrong.stderr

"""The product code type-checks clean with mypy in its default mode, as scripts/test runs it,
with mypy and the stubs it needs pinned in requirements.txt (issue 24, item 11)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ["components", "driver", "ops", "plan", "sandbox", "emulators", "__main__.py"]


def _mypy_command() -> list[str]:
    lines = (REPO / "scripts" / "test").read_text().splitlines()
    (line,) = [line for line in lines if "-m mypy" in line and not line.startswith("#")]
    return shlex.split(line)


def test_scripts_test_runs_mypy_over_the_product_code_in_its_default_mode() -> None:
    command = _mypy_command()
    assert command[:3] == [".venv/bin/python", "-m", "mypy"]
    assert command[3:] == PRODUCT  # no flags: the default mode, no config relaxing it
    assert not (REPO / "mypy.ini").exists() and not (REPO / ".mypy.ini").exists()
    assert "[tool.mypy" not in (REPO / "pyproject.toml").read_text()


def test_mypy_and_the_stubs_are_pinned() -> None:
    pins = dict(
        re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (REPO / "requirements.txt").read_text(), re.M)
    )
    for package in ("mypy", "types-PyYAML", "types-protobuf"):
        assert package in pins, package


def test_the_product_code_type_checks_clean() -> None:
    # mypy's own cache (.mypy_cache, which scripts/test's run has just filled) is checked
    # against each file's hash and mtime, so a warm run checks exactly what a cold one does.
    completed = subprocess.run(
        [sys.executable, "-m", "mypy", *PRODUCT],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.startswith("Success: no issues found")

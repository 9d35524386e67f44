"""Each benchmark says in --help what its targets are and what its exit status means."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(p.stem for p in (REPO / "benchmarks").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_benchmark_help_states_targets_and_exit_status(benchmark: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{benchmark}", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Targets:" in completed.stdout
    assert "Exit status:" in completed.stdout

"""Measuring this checkout and a git ref's tree side by side, in one run.

A benchmark with `--baseline REF` runs its own measuring code (a child mode of the same
script) once in this checkout and once in the tree of REF, in fresh processes, alternating
which goes first round by round, so both meet the same machine load. The child imports
the project from the tree it measures (PYTHONPATH), and the measuring code is this
checkout's script in both, so only the project's code differs.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from plan.refs import export_ref

REPO_ROOT = Path(__file__).resolve().parents[2]
CHILD_FLAG = "--measure-json"  # the child mode: measure in this process, print JSON


@contextlib.contextmanager
def trees(baseline: str | None) -> Iterator[dict[str, Path]]:
    """label -> tree: "current" is this checkout; with a baseline, its ref's tree too."""
    if baseline is None:
        yield {"current": REPO_ROOT}
        return
    with tempfile.TemporaryDirectory(prefix="openclaw-baseline-") as scratch:
        export_ref(baseline, Path(scratch))
        yield {"current": REPO_ROOT, baseline: Path(scratch) / "tree"}


def measure_in(tree: Path, script: Path, args: Sequence[str]) -> Any:
    """Run `script` in its child mode against the project in `tree`; its JSON answer."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    completed = subprocess.run(
        [sys.executable, str(script), CHILD_FLAG, *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"measuring {tree} failed:\n{completed.stderr.strip()}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def rounds(
    labelled: dict[str, Path], script: Path, args: Sequence[str], count: int
) -> dict[str, list[Any]]:
    """Each tree measured `count` times, alternating which goes first."""
    results: dict[str, list[Any]] = {label: [] for label in labelled}
    order = list(labelled)
    for index in range(count):
        for label in order if index % 2 == 0 else reversed(order):
            results[label].append(measure_in(labelled[label], script, args))
    return results

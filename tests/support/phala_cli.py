"""Running the repo's pinned `phala` CLI (node_modules/.bin/phala) in tests and benchmarks."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
PHALA_BIN = REPO_ROOT / "node_modules" / ".bin" / "phala"


def run_phala(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | str,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI and capture its output."""
    return subprocess.run(
        [str(PHALA_BIN), *args],
        env=dict(env),
        cwd=str(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def parse_json_from_output(text: str) -> Any:
    """The JSON object in CLI stdout, skipping the lines before it (`phala deploy --json`
    prints `Provisioning CVM <name>...` before its JSON on create)."""
    start = text.find("{")
    if start < 0:
        raise ValueError(f"no JSON object in output: {text!r}")
    return json.loads(text[start:])

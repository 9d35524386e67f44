"""scripts/venv: the test command's venv is rebuilt when another Python made it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "venv"


def _run(workdir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        [str(SCRIPT)], cwd=workdir, env=env, capture_output=True, text=True, check=False
    )


def _identity(python: Path) -> str:
    return subprocess.run(
        [str(python), "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_a_venv_made_by_another_python_is_rebuilt_and_one_of_the_chosen_python_kept(
    tmp_path: Path,
) -> None:
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 3.9.0 /opt/some-other-python\n")
    fake.chmod(0o755)
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert ".venv was made by another Python" in result.stderr
    assert _identity(fake) == sys.version.split()[0]

    marker = tmp_path / ".venv" / "kept"
    marker.touch()
    again = _run(tmp_path)
    assert again.returncode == 0 and "rebuilding" not in again.stderr
    assert marker.exists()

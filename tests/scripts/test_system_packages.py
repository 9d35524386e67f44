"""scripts/system-packages: silent and without apt-get when the packages are there,
installs exactly the missing ones otherwise, and says what to run when not root."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "system-packages"
PACKAGES = (
    "openssh-server",
    "openssh-client",
    "stunnel4",
    "docker-registry",
    "skopeo",
    "chromium",
)


def fake_tools(tmp_path: Path, installed: set[str], uid: int = 0) -> dict[str, str]:
    """Stand-ins for dpkg-query, apt-get and id that record what they were asked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "apt-calls.txt"
    scripts = {
        "dpkg-query": "#!/bin/sh\n"
        'for p in "$@"; do last="$p"; done\n'
        f'case " {" ".join(sorted(installed))} " in *" $last "*) printf installed;; '
        "*) exit 1;; esac\n",
        "apt-get": f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls}\n',
        "id": f"#!/bin/sh\necho {uid}\n",
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return dict(os.environ) | {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def run_script(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_nothing_runs_and_nothing_prints_when_every_package_is_installed(
    tmp_path: Path,
) -> None:
    result = run_script(fake_tools(tmp_path, set(PACKAGES)))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not (tmp_path / "apt-calls.txt").exists()


def test_only_the_missing_packages_are_installed_without_recommends(tmp_path: Path) -> None:
    result = run_script(fake_tools(tmp_path, {"openssh-client", "skopeo"}))
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "apt-calls.txt").read_text().splitlines()
    assert calls == [
        "install -y -qq --no-install-recommends openssh-server stunnel4 docker-registry chromium"
    ]


def test_without_root_it_names_the_missing_packages_and_fails(tmp_path: Path) -> None:
    result = run_script(fake_tools(tmp_path, set(PACKAGES) - {"stunnel4"}, uid=1000))
    assert result.returncode == 1
    assert "apt-get install -y --no-install-recommends stunnel4" in result.stderr
    assert not (tmp_path / "apt-calls.txt").exists()

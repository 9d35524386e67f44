"""The first `pulumi preview` on a fresh clone, which has no `.venv` (README, "Real use").

Pulumi.yaml names `virtualenv: .venv`, so the Python language host builds it before
anything else (toolchain EnsureVenv through GetRequiredPackages, on every preview and
up): `python3 -m venv .venv`, then pip, then `pip install -r requirements.txt`. Here pip
may not reach PyPI (PIP_NO_INDEX with an empty find-links folder), so the run shows the
steps and how the first one that needs the network fails, offline and the same every
time; the steps that succeed with a network are pinned in
tests/standins/test_language_host.py. It also shows what the README warns about: the
half-made `.venv` is not repaired by a later run.
"""

from __future__ import annotations

from pathlib import Path

from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import STACK, local_stack_config


def test_the_first_preview_builds_the_venv_and_a_failed_pip_leaves_it_half_made(
    engine_dir: Path, emulator: PhalaCloudEmulator, tmp_path: Path
) -> None:
    workspace = PulumiWorkspace(engine_dir, tmp_path / "engine", emulator)
    try:
        (workspace.project_dir / ".venv").unlink()  # a fresh clone has none
        no_packages = tmp_path / "no-packages"
        no_packages.mkdir()
        workspace.extra_env.update(
            {
                "PIP_NO_INDEX": "1",
                "PIP_FIND_LINKS": str(no_packages),
                "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            }
        )
        config, secret_keys = local_stack_config(("fresh-agent",))
        workspace.init_stack(STACK)
        workspace.configure(STACK, config, secret_keys)

        first = workspace.run("preview", "--stack", STACK)
        venv = workspace.project_dir / ".venv"
        assert first.returncode != 0
        assert (venv / "bin" / "python").is_file(), "python3 -m venv made the virtualenv"
        assert f"updating pip, setuptools, and wheel via '{venv / 'bin' / 'python'} -m pip " in (
            first.output
        )
        assert "install --upgrade pip setuptools wheel'" in first.output
        assert not list(venv.glob("lib/python3*/site-packages/pulumi")), "nothing installed"

        second = workspace.run("preview", "--stack", STACK)
        assert second.returncode != 0
        # bin/python exists, so the host takes the folder for a built virtualenv.
        assert "Creating virtual environment" not in second.output
        assert "No module named 'pulumi'" in second.output
    finally:
        workspace.close()

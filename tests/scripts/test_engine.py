"""scripts/engine: a cache keyed by the pins, never a half-finished build, the pinned
versions reported, and an ambient `pulumi` of the pinned version taken as it is."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import ENGINE_SCRIPT, PulumiWorkspace

PINNED = "v3.274.0"


def run_engine_script(
    *args: str, cache: Path, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENCLAW_ENGINE_CACHE": str(cache)}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [str(ENGINE_SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_check_reports_an_empty_cache_as_missing(tmp_path: Path) -> None:
    result = run_engine_script("--check", cache=tmp_path)
    assert result.returncode == 3 and result.stdout == ""


def test_a_build_folder_without_its_completion_mark_is_never_taken(tmp_path: Path) -> None:
    key = run_engine_script("--print-key", cache=tmp_path).stdout.strip()
    half = tmp_path / key
    half.mkdir()
    (half / "pulumi").write_text("#!/bin/sh\necho half-built\n")
    (half / "pulumi").chmod(0o755)
    (half / "pulumi-language-python-exec").write_text("")
    assert run_engine_script("--check", cache=tmp_path).returncode == 3


def test_an_ambient_pulumi_of_the_pinned_version_is_used_instead_of_building(
    engine_dir: Path, tmp_path: Path
) -> None:
    ambient = tmp_path / "ambient-bin"
    ambient.mkdir()
    os.link(engine_dir / "pulumi", ambient / "pulumi")
    result = run_engine_script(
        cache=tmp_path / "cache", path=f"{ambient}{os.pathsep}{os.environ['PATH']}"
    )
    assert result.returncode == 0, result.stderr
    assert "using the pulumi v3.274.0 already on PATH" in result.stderr
    assert "building" not in result.stderr
    built = Path(result.stdout.strip())
    assert built.parent == tmp_path / "cache" and (built / ".complete").exists()
    # Idempotent: the second call takes the cached result and builds nothing.
    again = run_engine_script(cache=tmp_path / "cache")
    assert again.stdout.strip() == str(built) and again.stderr == ""


def test_the_engine_reports_its_pinned_versions(engine_dir: Path, tmp_path: Path) -> None:
    with PhalaCloudEmulator() as emulator:
        workspace = PulumiWorkspace(engine_dir, tmp_path / "ws", emulator)
        try:
            assert workspace.run("version").expect_success().stdout.strip() == PINNED
            plugins = workspace.run("plugin", "ls", "--json").expect_success().json
            assert {(p["name"], p["kind"], p["version"]) for p in plugins} >= {
                ("command", "resource", "1.2.1")
            }
        finally:
            workspace.close()

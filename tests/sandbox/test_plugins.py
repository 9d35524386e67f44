"""The sandbox takes the real provider plugins where a normal `pulumi` install put them
(the plugin cache at the pinned version, or PATH), else the stand-ins, and says which first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sandbox.plugins import STANDIN_PROVIDERS, choose_plugins, first_line, mode_from

REPO = Path(__file__).resolve().parents[2]


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_without_real_plugins_the_stand_ins_run_and_the_first_line_says_so(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path), "PATH": str(tmp_path / "bin")}
    choices = choose_plugins(environ)
    assert [c.where for c in choices] == ["stand-in", "stand-in"]
    assert all(c.plugin.real is None for c in choices)
    line = first_line(choices, environ)
    assert line.startswith("local stand-in provider plugins")
    assert "pulumi-resource-command 1.2.1 and pulumi-resource-cloudflare 6.17.0" in line
    assert str(tmp_path / ".pulumi" / "plugins") in line


def test_real_plugins_in_the_cache_at_the_pinned_version_or_on_path_are_taken(
    tmp_path: Path,
) -> None:
    home = tmp_path / "pulumi-home"
    command = _executable(home / "plugins" / "resource-command-v1.2.1" / "pulumi-resource-command")
    _executable(home / "plugins" / "resource-cloudflare-v6.16.0" / "pulumi-resource-cloudflare")
    on_path = _executable(tmp_path / "bin" / "pulumi-resource-cloudflare")
    environ = {"PULUMI_HOME": str(home), "PATH": str(tmp_path / "bin")}
    choices = choose_plugins(environ)
    assert [(c.plugin.name, c.where, c.plugin.real) for c in choices] == [
        ("command", "plugin cache", command),
        ("cloudflare", "PATH", on_path),  # another version in the cache is not the one asked
    ]
    assert first_line(choices, environ).startswith("real provider plugins: command 1.2.1 real")
    assert choose_plugins(environ, "standins")[0].plugin.real is None


def test_a_half_installed_plugin_is_not_taken_and_a_mix_is_said(tmp_path: Path) -> None:
    plugins = tmp_path / ".pulumi" / "plugins"
    _executable(plugins / "resource-command-v1.2.1" / "pulumi-resource-command")
    (plugins / "resource-command-v1.2.1.partial").touch()
    _executable(plugins / "resource-cloudflare-v6.17.0" / "pulumi-resource-cloudflare")
    environ = {"HOME": str(tmp_path), "PATH": ""}
    choices = choose_plugins(environ)
    assert [c.where for c in choices] == ["stand-in", "plugin cache"]
    line = first_line(choices, environ)
    assert line.startswith("provider plugins: command 1.2.1 local stand-in")
    assert "cloudflare 6.17.0 real (plugin cache" in line


def test_the_versions_are_the_ones_the_pinned_sdks_ask_for() -> None:
    pins = (REPO / "requirements.txt").read_text()
    for plugin in STANDIN_PROVIDERS:
        assert f"pulumi_{plugin.name}=={plugin.version}" in pins


def test_scripts_sandbox_says_it_first_with_the_standard_library_alone(tmp_path: Path) -> None:
    said = subprocess.run(
        [sys.executable, "-S", "-m", "sandbox.plugins", "up", "--plugins", "standins"],
        cwd=REPO,
        env={"HOME": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    assert said.stdout.startswith("sandbox: local stand-in provider plugins")
    assert mode_from(["up", "--plugins=standins"]) == "standins"
    assert mode_from(["up"]) == "auto"

"""The README keeps telling a new user the truth about config, commands and CI."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from components.config_keys import SCALAR_KEYS, TENANT_FIELDS, TENANT_SECRET_FIELDS
from components.config_parser import parse_settings
from components.settings import RawConfig

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_every_config_key_and_tenant_field_is_documented() -> None:
    for key in SCALAR_KEYS:
        assert f"| `{key.name}` |" in README, key.name
    for name in TENANT_FIELDS:
        assert f"| `{name}` |" in README, name
    for name in TENANT_SECRET_FIELDS:
        assert f"`{name}`" in README, name


def test_the_documented_test_command_is_what_ci_runs() -> None:
    assert "```sh\n./scripts/test\n```" in README
    ci = (REPO / ".ci" / "run").read_text()
    assert "exec ./scripts/test\n" in ci


def test_the_documented_stack_files_exist() -> None:
    for stack in ("prod", "mux", "tenants"):
        assert f"Pulumi.{stack}.yaml" in README
        assert (REPO / f"Pulumi.{stack}.yaml").exists()


def _quick_start() -> str:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def _set_path(config: dict, path: str, value: str) -> None:
    """`pulumi config set --path`: dots step into objects, [n] into lists."""
    parts = [p for p in re.split(r"\.|\[(\d+)\]", path) if p]
    node: Any = config
    for part, following in zip(parts, [*parts[1:], None], strict=True):
        index: Any = int(part) if part.isdigit() else part
        if following is None:
            if isinstance(node, list) and index == len(node):
                node.append(value)
            else:
                node[index] = value
            return
        child: Any = [] if following.isdigit() else {}
        if isinstance(node, list):
            if index == len(node):
                node.append(child)
            node = node[index]
        else:
            node = node.setdefault(index, child)


def quick_start_config_commands() -> list[list[str]]:
    """The quick start's `pulumi config set` commands as argv, with what the shell would
    substitute for `$(...)`: a fresh random key, a test SSH public key."""
    generated = {
        "$(head -c 32 /dev/urandom | base64)": base64.b64encode(os.urandom(32)).decode(),
        "$(cat ~/.ssh/id_ed25519.pub)": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyForTests",
    }
    commands = []
    for line in _quick_start().splitlines():
        if not line.startswith("pulumi config set"):
            continue
        for expression, value in generated.items():
            line = line.replace(expression, value)
        assert "$(" not in line, line
        commands.append(shlex.split(line, comments=True))
    return commands


def test_the_quick_start_replayed_as_written_gives_a_valid_config() -> None:
    config: dict[str, Any] = {}
    secret: set[str] = set()
    commands = quick_start_config_commands()
    assert len(commands) >= 10
    for argv in commands:
        words = argv[3:]
        is_secret, by_path = "--secret" in words, "--path" in words
        key, value = [w for w in words if not w.startswith("--")]
        assert "<" not in value and ">" not in value, f"{key} is a placeholder: {value}"
        if by_path:
            _set_path(config, key, value)
        else:
            config[key] = value
        if is_secret:
            secret.add(re.split(r"[.\[]", key)[0])
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    settings = parse_settings(RawConfig(values=values, secret_keys=frozenset(secret)))
    assert [t.name for t in settings.tenants] == ["alice-agent", "staging-agent"]
    assert settings.mux is not None and settings.mux.name == "openclaw-mux"


def test_every_python_command_the_readme_shows_runs_from_the_venv() -> None:
    blocks = "\n".join(re.findall(r"```(?:sh|bash)?\n(.*?)```", README, re.DOTALL))
    shown = re.findall(r"(\S*python3?) -m (\w+)", blocks)
    assert shown
    for interpreter, module in shown:
        assert interpreter == ".venv/bin/python", f"{interpreter} -m {module}"
        assert (REPO / module).is_dir(), module


@pytest.mark.parametrize("module", ["plan", "ops"])
def test_the_readme_modules_answer_help(module: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "usage" in completed.stdout.lower()


def _readme_commands(prefix: str) -> list[list[str]]:
    blocks = "\n".join(re.findall(r"```(?:sh|bash)?\n(.*?)```", README, re.DOTALL))
    return [
        shlex.split(line.removeprefix("$ "), comments=True)
        for line in blocks.splitlines()
        if line.removeprefix("$ ").startswith(prefix)
    ]


def test_the_readmes_plan_show_commands_run_as_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from plan.__main__ import main as plan_main

    commands = _readme_commands(".venv/bin/python -m plan show")
    assert len(commands) >= 2
    for argv in commands:
        assert argv[:3] == [".venv/bin/python", "-m", "plan"]
        # In this process (the module is what `-m plan` runs): the same argv, faster.
        assert plan_main(argv[3:]) == 0, (argv, capsys.readouterr().err)
        assert "# openclaw-phala offline plan" in capsys.readouterr().out or "--json" in argv

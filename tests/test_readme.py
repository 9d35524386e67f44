"""The README keeps telling a new user the truth about config, commands and CI."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from components import config_keys
from components.config_keys import SCALAR_KEYS, TENANT_FIELDS, TENANT_SECRET_FIELDS
from components.config_parser import parse_settings
from components.settings import RawConfig
from plan.evaluate import read_stack_config, run_program
from tests.support.stack_configs import prod_config

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
# What `cat ~/.ssh/id_ed25519.pub` gives: a real ed25519 public key line.
QUICK_START_SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKzzHDfjgc6Es7sFjYMKVraBsIbViV3KfegccClq2ALZ you@laptop"
)


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
        "$(cat ~/.ssh/id_ed25519.pub)": QUICK_START_SSH_KEY,
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


def test_the_quick_start_replayed_as_written_on_the_committed_stack_file_gives_a_valid_config() -> (
    None
):
    # `pulumi stack init prod` keeps the committed Pulumi.prod.yaml, so the quick start's
    # commands land on it (before: its --path lines rewrote tenants[1] into a hybrid of
    # bob-agent and staging-agent). The real CLI replays it in tests/engine/test_quick_start.py.
    config, secret = read_stack_config("prod")
    config = {key: copy.deepcopy(value) for key, value in config.items()}
    secret = set(secret)
    commands = quick_start_config_commands()
    assert len(commands) >= 8
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
    assert [t.name for t in settings.tenants] == ["alice-agent", "bob-agent", "staging-agent"]
    bob = settings.tenants[1]
    assert bob.r2 is not None and bob.r2.jurisdiction == "eu"  # bob keeps his own settings
    assert settings.mux is not None and settings.mux.name == "openclaw-mux"
    assert settings.phala.ssh_public_key == QUICK_START_SSH_KEY


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


def _section(title: str) -> str:
    return README.split(title, 1)[1].split("\n#", 1)[0]


def test_every_enforced_limit_is_in_the_reference() -> None:
    """Each limit constant of components/config_keys.py appears in the limits table."""
    table = _section("### Enforced limits")
    limits = {
        name: value
        for name, value in vars(config_keys).items()
        if name.startswith(("MAX_", "MIN_")) and isinstance(value, int)
    }
    assert len(limits) >= 14
    for name, value in limits.items():
        assert re.search(rf"(?<![0-9]){value}(?![0-9])", table), f"{name} = {value}"


def test_the_contract_table_lists_every_field_the_program_exports() -> None:
    config, secret_keys = prod_config()
    exports = run_program(config, secret_keys).plain_exports
    table = _section("## Stack outputs (the contract)")
    rows = dict(re.findall(r"^\| `(\w+)` \| (?:no|yes) \| `(.+?)`", table, re.MULTILINE))
    assert set(rows) == set(exports)
    shapes = {
        "tenants": next(iter(exports["tenants"].values())),
        "tenantSecrets": next(iter(exports["tenantSecrets"].values())),
        "mux": exports["mux"],
        "muxSecrets": exports["muxSecrets"],
    }
    for output, record in shapes.items():
        documented = re.findall(r"\w+", rows[output].split("{", 2)[-1])
        assert sorted(documented) == sorted(record), output


def test_trying_it_without_an_account_comes_first_with_its_two_commands() -> None:
    first = README.split("\n## ", 2)[1]
    assert first.startswith("Try it without an account\n")
    assert "```sh\n./scripts/sandbox up " in first
    assert "\n./scripts/test " in first


def test_every_sandbox_command_the_readme_shows_is_one_the_sandbox_takes() -> None:
    from sandbox.__main__ import build_parser

    commands = [argv for argv in _readme_commands("./scripts/sandbox ") if argv]
    assert {argv[1] for argv in commands} >= {"up", "rehearse"}
    for argv in commands:
        build_parser().parse_args(argv[1:])  # exits 2 on anything it does not take
    mentioned = set(re.findall(r"\./scripts/sandbox (\w+)", README))
    assert mentioned == {"up", "status", "down", "rehearse"}

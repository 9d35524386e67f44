"""The harness's per-process caches (tests/support/engine_harness.py) give a later
workspace what the CLI would have written, under the real engine: the secret config the
engine decrypts is the config given, the plugins are the ones installed, and a stack that
holds secrets under a salt of its own is configured through the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.phala import PhalaCloudEmulator
from sandbox.engine import leaves
from tests.support.engine_harness import PROJECT, PulumiWorkspace
from tests.support.engine_stacks import STACK, local_stack_config, opened_workspace

TENANTS = ("cache-agent-0", "cache-agent-1")


@pytest.fixture
def emulator() -> Iterator[PhalaCloudEmulator]:
    with PhalaCloudEmulator() as running:
        yield running


def counting_config_commands(workspace: PulumiWorkspace) -> list[tuple[str, ...]]:
    ran: list[tuple[str, ...]] = []
    start = workspace.start

    def recording(*args: str, **kwargs: Any) -> Any:
        if args and args[0] == "config":
            ran.append(args)
        return start(*args, **kwargs)

    workspace.start = recording  # type: ignore[method-assign]
    return ran


def decrypted(workspace: PulumiWorkspace, key: str) -> Any:
    shown = workspace.run("config", "--show-secrets", "--json", "--stack", STACK)
    entry = shown.expect_success().json[f"{PROJECT}:{key}"]
    assert entry["secret"] is True
    return entry.get("objectValue", entry["value"])


def salt_of(workspace: PulumiWorkspace) -> str:
    text = workspace.stack_file(STACK).read_text()
    return next(line for line in text.splitlines() if line.startswith("encryptionsalt:"))


@pytest.fixture
def first(
    engine_dir: Path, emulator: PhalaCloudEmulator, tmp_path: Path
) -> Iterator[PulumiWorkspace]:
    """A stack configured before the ones each test checks (the caches' first fill)."""
    with opened_workspace(engine_dir, tmp_path / "first", emulator) as workspace:
        workspace.init_stack(STACK)
        workspace.configure(STACK, *local_stack_config(TENANTS))
        yield workspace


def test_a_later_stack_gets_the_ciphertexts_without_the_cli_and_the_engine_reads_them(
    engine_dir: Path, emulator: PhalaCloudEmulator, first: PulumiWorkspace, tmp_path: Path
) -> None:
    config, secret_keys = local_stack_config(TENANTS)
    with opened_workspace(engine_dir, tmp_path / "later", emulator) as later:
        later.init_stack(STACK)
        ran = counting_config_commands(later)
        later.configure(STACK, config, secret_keys)
        assert ran == []
        assert salt_of(later) == salt_of(first)
        for key in secret_keys:
            assert decrypted(later, key) == config[key]
        plugins = sorted(p.name for p in (later.pulumi_home / "plugins").iterdir())
        assert plugins == sorted(p.name for p in (first.pulumi_home / "plugins").iterdir())
        listed = later.run("plugin", "ls", "--json").expect_success().json
        assert {(p["name"], p["version"]) for p in listed} == {
            (plugin.name, plugin.version) for plugin in later.providers
        }


def test_a_stack_with_secrets_under_its_own_salt_is_configured_through_the_cli(
    engine_dir: Path, emulator: PhalaCloudEmulator, first: PulumiWorkspace, tmp_path: Path
) -> None:
    config, secret_keys = local_stack_config(TENANTS)
    with opened_workspace(engine_dir, tmp_path / "own", emulator) as own:
        own.init_stack(STACK)
        own.set_secret(STACK, "muxMasterKey", "own-salt-mux-master-key-0123456789abcdef")
        own_salt = salt_of(own)
        ran = counting_config_commands(own)
        own.configure(STACK, config, secret_keys)
        leaf_count = sum(len(leaves(key, config[key])) for key in secret_keys)
        assert len(ran) == leaf_count
        assert salt_of(own) == own_salt != salt_of(first)
        for key in secret_keys:
            assert decrypted(own, key) == config[key]
        assert decrypted(own, "muxMasterKey") == "own-salt-mux-master-key-0123456789abcdef"

"""The README's quick start, replayed as written on a fresh clone's committed example stack
under the real engine: `pulumi stack init prod` keeps Pulumi.prod.yaml, its `pulumi config
set` commands land on it, and `pulumi preview` accepts the result and creates every CVM the
example names (before, the quick start's --path lines turned tenants[1] into a hybrid of
bob-agent and staging-agent, and the preview failed)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from emulators.cloudflare import CloudflareEmulator
from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import REPO_ROOT, PulumiWorkspace
from tests.support.engine_stacks import preview_ops
from tests.test_readme import QUICK_START_SSH_KEY, quick_start_config_commands

QUICK_START_ACCOUNT = "0123456789abcdef0123456789abcdef"  # the account the quick start sets


@pytest.fixture
def fresh_clone(
    engine_dir: Path, emulator: PhalaCloudEmulator, tmp_path: Path
) -> Iterator[PulumiWorkspace]:
    with CloudflareEmulator(account_id=QUICK_START_ACCOUNT) as cloudflare:
        workspace = PulumiWorkspace(engine_dir, tmp_path / "engine", emulator, cloudflare)
        try:
            # A fresh clone has the committed example stack files beside the project.
            shutil.copy2(REPO_ROOT / "Pulumi.prod.yaml", workspace.stack_file("prod"))
            yield workspace
        finally:
            workspace.close()


def test_the_quick_start_as_written_on_the_committed_stack_passes_a_real_preview(
    fresh_clone: PulumiWorkspace,
) -> None:
    fresh_clone.run("stack", "init", "prod", "--non-interactive").expect_success()
    for argv in quick_start_config_commands():
        assert argv[:3] == ["pulumi", "config", "set"]
        fresh_clone.run(*argv[1:], "--stack", "prod").expect_success()

    config = yaml.safe_load(fresh_clone.stack_file("prod").read_text())["config"]
    committed = yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())["config"]
    assert config["openclaw-phala:tenants"] == committed["openclaw-phala:tenants"]
    assert config["openclaw-phala:phalaSshPublicKey"] == QUICK_START_SSH_KEY

    preview = fresh_clone.run("preview", "--json", "--stack", "prod").expect_success()
    created = {urn.rsplit("::", 1)[-1] for urn, op in preview_ops(preview.json).items()}
    assert {
        "alice-agent-deploy",
        "bob-agent-deploy",
        "staging-agent-deploy",
        "openclaw-mux-deploy",
        "bob-agent-storage-bucket",
    } <= created

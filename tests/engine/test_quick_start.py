"""The README's quick start, replayed as written on a fresh stack under the real engine:
its `pulumi config set` commands give a config that `pulumi preview` accepts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.cloudflare import CloudflareEmulator
from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import preview_ops
from tests.test_readme import quick_start_config_commands

QUICK_START_ACCOUNT = "0123456789abcdef0123456789abcdef"  # the account the quick start sets


@pytest.fixture
def fresh_stack(
    engine_dir: Path, emulator: PhalaCloudEmulator, tmp_path: Path
) -> Iterator[PulumiWorkspace]:
    with CloudflareEmulator(account_id=QUICK_START_ACCOUNT) as cloudflare:
        workspace = PulumiWorkspace(engine_dir, tmp_path / "engine", emulator, cloudflare)
        try:
            workspace.init_stack("prod")
            yield workspace
        finally:
            workspace.close()


def test_the_quick_start_as_written_passes_a_real_preview(fresh_stack: PulumiWorkspace) -> None:
    for argv in quick_start_config_commands():
        assert argv[:3] == ["pulumi", "config", "set"]
        fresh_stack.run(*argv[1:], "--stack", "prod").expect_success()
    preview = fresh_stack.run("preview", "--json", "--stack", "prod").expect_success()
    created = {urn.rsplit("::", 1)[-1] for urn, op in preview_ops(preview.json).items()}
    assert {"alice-agent-deploy", "staging-agent-deploy", "openclaw-mux-deploy"} <= created

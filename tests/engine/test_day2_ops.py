"""Day-2 commands on real outputs: `ops status` and `ops pair` read them through the real
`pulumi stack output --json --show-secrets`, with and without --stack; drift made in the
emulator out of band is reported, and a plain `pulumi up` repairs it.

The tests share one deployed stack: the first two only read it, the drift test (last)
breaks it and leaves it repaired."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.compose import openclaw_compose
from components.derivation import derive_mux_keys, derive_tenant_keys
from emulators.phala import PhalaCloudEmulator
from tests.ops.mux_admin_fake import FakeMuxAdmin, running_fake_mux
from tests.support.engine_harness import REPO_ROOT, PulumiWorkspace
from tests.support.engine_stacks import (
    STACK,
    engine_emulator,
    engine_operations,
    local_stack_config,
    opened_workspace,
    write_requests,
)
from tests.support.stack_configs import IMAGE, MUX_MASTER_KEY, master_key_for

TENANTS = ("day2-agent-0", "day2-agent-1")
MUX = "day2-mux"


@pytest.fixture(scope="module")
def emulator() -> Iterator[PhalaCloudEmulator]:
    with engine_emulator() as running:
        yield running


@pytest.fixture(scope="module")
def deployed(
    engine_dir: Path, emulator: PhalaCloudEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PulumiWorkspace]:
    root = tmp_path_factory.mktemp("day2") / "engine"
    with opened_workspace(engine_dir, root, emulator) as workspace:
        config, secret_keys = local_stack_config(TENANTS, mux=MUX)
        workspace.init_stack(STACK)
        workspace.configure(STACK, config, secret_keys)
        workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()
        yield workspace


def ops(workspace: PulumiWorkspace, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m ops` as an operator runs it: the real pulumi on PATH, from the project."""
    return subprocess.run(
        [sys.executable, "-m", "ops", *args],
        cwd=REPO_ROOT,
        env=workspace.environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("stack_args", [("--stack", STACK), ()], ids=["--stack", "selected"])
def test_status_and_pair_read_the_real_outputs(
    deployed: PulumiWorkspace, stack_args: tuple[str, ...]
) -> None:
    if not stack_args:  # the operator's selected stack, for the project ops belongs to
        deployed.run("stack", "select", STACK, cwd=REPO_ROOT).expect_success()
    status = ops(deployed, "status", *stack_args)
    assert status.returncode == 0, status.stderr
    assert f"all {len(TENANTS) + 1} CVMs ok" in status.stdout

    admin_token = derive_mux_keys(MUX_MASTER_KEY).admin_token
    with running_fake_mux(FakeMuxAdmin(admin_token=admin_token)) as mux:
        paired = ops(
            deployed, "pair", TENANTS[1], "telegram", "--mux-url", mux.base_url, *stack_args
        )
        assert paired.returncode == 0, paired.stderr
        assert paired.stderr == ""  # the real outputs list the mux's channels: no warning
        # The stack's mux runs telegram only: a discord token is refused before any request.
        refused = ops(
            deployed, "pair", TENANTS[1], "discord", "--mux-url", mux.base_url, *stack_args
        )
        assert refused.returncode == 2
        assert "does not run discord, only telegram" in refused.stderr
        (request,) = mux.requests
        assert request.headers["authorization"] == f"Bearer {admin_token}"
        assert (
            request.body["openclawId"] == derive_tenant_keys(master_key_for(TENANTS[1])).openclaw_id
        )
    assert admin_token not in paired.stdout + paired.stderr


def test_drift_is_reported_and_a_plain_up_repairs_it(
    deployed: PulumiWorkspace, emulator: PhalaCloudEmulator
) -> None:
    emulator.change_compose_externally(TENANTS[0], "services:\n  hand-made:\n    image: x\n")
    emulator.delete_behind_back(TENANTS[1])
    status = ops(deployed, "status", "--stack", STACK)
    assert status.returncode == 1
    assert "DRIFT: compose changed outside Pulumi" in status.stdout
    assert "DRIFT: missing" in status.stdout

    preview = deployed.run("preview", "--json", "--stack", STACK).expect_success()
    assert engine_operations(preview.json) == {f"{t}-deploy": "update" for t in TENANTS}
    deployed.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()

    assert emulator.cvm_by_name(TENANTS[0]).docker_compose_file == openclaw_compose(IMAGE)
    assert emulator.cvm_by_name(TENANTS[1]) is not None
    repaired = ops(deployed, "status", "--stack", STACK)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr

    emulator.clear_log()
    deployed.run("preview", "--expect-no-changes", "--stack", STACK).expect_success()
    deployed.run("up", "--yes", "--expect-no-changes", "--stack", STACK).expect_success()
    assert write_requests(emulator) == []

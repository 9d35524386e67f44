"""The first real `pulumi preview` / `up` / `destroy` of the program, in order.

One stack (a mux and two local-storage tenants) goes through its life under the real
engine against the Phala API emulator: create, a no-op run, the outputs as the ops CLI
reads them, removals and a destroy refused naming their opt-in, the release the
documented way, and destroy. The tests share
one workspace and run in file order; each builds on the state the previous one left.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.compose import mux_compose, openclaw_compose
from components.derivation import derive_mux_keys, derive_tenant_keys
from components.sdk_debug_log import SDK_DEBUG_LOGS_VAR
from driver import protocol
from emulators.phala import PhalaCloudEmulator
from ops.stack_outputs import parse_stack_outputs
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import (
    STACK,
    command_states,
    local_stack_config,
    preview_ops,
    write_requests,
)
from tests.support.stack_configs import IMAGE, MUX_IMAGE, MUX_MASTER_KEY, master_key_for

TENANTS = ("local-agent-0", "local-agent-1")
MUX = "shared-mux"


@pytest.fixture(scope="module")
def deployment(
    engine_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[PulumiWorkspace, PhalaCloudEmulator]]:
    with PhalaCloudEmulator(provision_seconds=0.2, update_seconds=0.2) as emulator:
        workspace = PulumiWorkspace(engine_dir, tmp_path_factory.mktemp("first-runs"), emulator)
        try:
            config, secret_keys = local_stack_config(TENANTS, mux=MUX)
            workspace.init_stack(STACK)
            workspace.configure(STACK, config, secret_keys)
            yield workspace, emulator
        finally:
            workspace.close()


def test_preview_then_up_creates_every_cvm_with_the_rendered_compose_and_env(
    deployment: tuple[PulumiWorkspace, PhalaCloudEmulator],
) -> None:
    workspace, emulator = deployment
    preview = workspace.run("preview", "--json", "--stack", STACK).expect_success()
    planned = preview_ops(preview.json)
    assert {urn.rsplit("::", 1)[-1] for urn, op in planned.items() if op == "create"} >= {
        f"{name}-deploy" for name in (*TENANTS, MUX)
    }
    assert set(planned.values()) == {"create"}
    assert emulator.cvms() == [], "a preview must not touch the Phala API"

    workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()

    states = command_states(workspace, STACK)
    assert sorted(c.name for c in emulator.cvms()) == sorted((*TENANTS, MUX))
    for cvm in emulator.cvms():
        environment = states[cvm.name]["environment"]
        expected_compose = mux_compose(MUX_IMAGE) if cvm.name == MUX else openclaw_compose(IMAGE)
        assert environment[protocol.COMPOSE] == expected_compose
        assert cvm.docker_compose_file == expected_compose  # byte-exact, as rendered
        names = environment[protocol.ENV_KEYS].split(",")
        rendered = {name: environment[protocol.env_value_var(name)] for name in names}
        # `phala deploy --dev-os --ssh-pubkey` adds the operator's key to the env.
        rendered["DSTACK_AUTHORIZED_KEYS"] = environment[protocol.SSH_PUBLIC_KEY]
        assert emulator.decrypted_env(cvm) == rendered
        assert cvm.status == "running"
    for name in TENANTS:
        env = emulator.decrypted_env(emulator.cvm_by_name(name))
        assert env["MASTER_KEY"] == master_key_for(name)


def test_second_preview_and_up_change_nothing_and_send_no_write(
    deployment: tuple[PulumiWorkspace, PhalaCloudEmulator],
) -> None:
    workspace, emulator = deployment
    emulator.clear_log()
    workspace.run("preview", "--expect-no-changes", "--stack", STACK).expect_success()
    up = workspace.run("up", "--yes", "--expect-no-changes", "--stack", STACK).expect_success()
    assert "created" not in up.stdout and "updated" not in up.stdout
    assert write_requests(emulator) == []


def test_the_sdks_debug_messages_reach_debug_output_only_when_asked_for(
    deployment: tuple[PulumiWorkspace, PhalaCloudEmulator],
) -> None:
    # components/sdk_debug_log.py: dropped by default, kept with OPENCLAW_SDK_DEBUG_LOGS=1.
    workspace, _ = deployment
    sdk_message = "resource registration successful"
    quiet = workspace.run("preview", "--debug", "--stack", STACK).expect_success()
    assert sdk_message not in quiet.output
    workspace.extra_env[SDK_DEBUG_LOGS_VAR] = "1"
    try:
        asked = workspace.run("preview", "--debug", "--stack", STACK).expect_success()
    finally:
        del workspace.extra_env[SDK_DEBUG_LOGS_VAR]
    assert sdk_message in asked.output


def test_stack_outputs_are_read_by_the_ops_loader_and_match_the_contract(
    deployment: tuple[PulumiWorkspace, PhalaCloudEmulator],
) -> None:
    workspace, emulator = deployment
    document = (
        workspace.run("stack", "output", "--json", "--show-secrets", "--stack", STACK)
        .expect_success()
        .json
    )
    outputs = parse_stack_outputs(document)
    assert document["contractVersion"] == 1
    assert sorted(outputs.tenants) == sorted(TENANTS)
    for name in TENANTS:
        cvm = emulator.cvm_by_name(name)
        tenant, secrets = outputs.tenant(name), outputs.secrets_for(name)
        keys = derive_tenant_keys(master_key_for(name))
        assert (tenant.cvm_id, tenant.app_id) == (cvm.vm_uuid, cvm.app_id)
        assert tenant.storage_mode == "local" and tenant.bucket is None
        assert tenant.openclaw_id == keys.openclaw_id
        assert tenant.compose_hash == cvm.compose_hash
        expected_url = f"https://{cvm.app_id}-18789.{emulator.gateway_base_domain}"
        assert tenant.gateway_url == expected_url
        assert secrets.gateway_token == keys.gateway_token
        assert secrets.dashboard_url == f"{expected_url}/#token={keys.gateway_token}"
    mux, mux_secrets = outputs.require_mux()
    mux_cvm = emulator.cvm_by_name(MUX)
    assert mux.cvm_id == mux_cvm.vm_uuid
    assert mux.base_url == f"https://{mux_cvm.app_id}-18891.{emulator.gateway_base_domain}"
    assert mux_secrets.register_key == derive_mux_keys(MUX_MASTER_KEY).register_key

    plain = workspace.run("stack", "output", "--json", "--stack", STACK).expect_success().json
    assert plain["tenantSecrets"] == "[secret]" and plain["muxSecrets"] == "[secret]"


def test_removing_a_local_tenant_or_renaming_the_mux_is_refused_at_preview(
    deployment: tuple[PulumiWorkspace, PhalaCloudEmulator],
) -> None:
    workspace, emulator = deployment
    stack_file = workspace.stack_file(STACK)
    saved = stack_file.read_text()
    config, _ = local_stack_config(TENANTS, mux=MUX)
    try:
        workspace.write_plain_config(STACK, {"tenants": config["tenants"][1:]})
        workspace.remove_config(STACK, f"tenantSecrets.{TENANTS[0]}")
        removed = workspace.run("preview", "--stack", STACK)
        stack_file.write_text(saved)
        workspace.write_plain_config(STACK, {"muxName": f"{MUX}-2"})
        renamed = workspace.run("preview", "--stack", STACK)
    finally:
        stack_file.write_text(saved)
    assert removed.returncode != 0 and renamed.returncode != 0
    assert (
        f"openclaw-phala:tenants (tenant {TENANTS[0]}): it is no longer configured, and "
        "deleting its CVM loses the state on its volumes" in removed.output
    )
    assert "keep it in tenants with allowDataLoss: true for one `pulumi up`" in removed.output
    assert (
        f"openclaw-phala:muxName (mux {MUX}): the mux is renamed to {MUX}-2, and deleting its "
        "CVM loses its pairing DB and WhatsApp auth" in renamed.output
    )
    assert "set muxAllowDataLoss: true for one `pulumi up`" in renamed.output
    assert "unprotect" not in removed.output + renamed.output
    assert len(emulator.cvms()) == 3


def test_destroy_is_refused_naming_each_opt_in_then_allowed_once_it_is_deployed(
    deployment: tuple[PulumiWorkspace, PhalaCloudEmulator],
) -> None:
    workspace, emulator = deployment
    destroy = workspace.run("destroy", "--yes", "--stack", STACK)
    assert destroy.returncode != 0, "CVMs with local state must refuse a destroy"
    # destroy does not run the program: each CVM's guard fails its delete, first.
    refusals = [line for line in destroy.output.splitlines() if "refusing to delete CVM" in line]
    assert refusals, destroy.output
    for line in refusals:
        tenant = next((t for t in TENANTS if f"CVM {t}:" in line), None)
        how = f"set allowDataLoss: true on tenant {tenant}" if tenant else "set muxAllowDataLoss"
        assert how in line, line
    assert "unprotect" not in destroy.output
    assert len(emulator.cvms()) == 3

    release: dict[str, Any] = {"muxAllowDataLoss": True}
    config, _ = local_stack_config(TENANTS, mux=MUX)
    release["tenants"] = [{**tenant, "allowDataLoss": True} for tenant in config["tenants"]]
    workspace.write_plain_config(STACK, release)
    emulator.clear_log()
    released = workspace.run("up", "--yes", "--stack", STACK).expect_success()
    assert write_requests(emulator) == [], "releasing protection must not redeploy a CVM"
    assert "replaced" not in released.stdout

    workspace.run("destroy", "--yes", "--stack", STACK).expect_success()
    assert [c.name for c in emulator.cvms()] == []

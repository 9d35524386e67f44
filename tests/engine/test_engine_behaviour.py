"""What only the real engine shows: config as `pulumi config set` stores it, the
command provider's working directory and environment, the update path with the previous
stdout, the local-state refusal and `deleteBeforeReplace`, and inputs that do not depend
on the checkout path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from driver import protocol
from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import (
    STACK,
    local_stack_config,
    preview_ops,
    shown,
    write_requests,
)
from tests.support.stack_configs import IMAGE, MUX_IMAGE, SSH_KEY

IMAGE_V2 = "h4x3rotab/openclaw-cvm@sha256:" + "c" * 64


def planned_commands(preview: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """CVM name -> the Command's planned state in a `preview --json --show-secrets`."""
    return {
        step["urn"].rsplit("::", 1)[-1].removesuffix("-deploy"): shown(step["newState"])
        for step in preview["steps"]
        if step.get("newState", {}).get("type") == "command:local:Command"
    }


def planned_guards(preview: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """CVM name -> its local-state guard Command's planned state."""
    return {
        step["urn"].rsplit("::", 1)[-1].split("-local-state-needs-")[0]: shown(step["newState"])
        for step in preview["steps"]
        if "-local-state-needs-" in step["urn"] and step.get("newState")
    }


def deploy(workspace: PulumiWorkspace, tenants: tuple[str, ...], **overrides: Any) -> None:
    config, secret_keys = local_stack_config(tenants, **overrides)
    workspace.init_stack(STACK)
    workspace.configure(STACK, config, secret_keys)
    workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()


def test_config_set_of_each_key_type_is_read_back_by_the_program(
    workspace: PulumiWorkspace, emulator: PhalaCloudEmulator
) -> None:
    workspace.init_stack(STACK)
    plain = {
        "openclawImage": IMAGE,  # string
        "phalaSshPublicKey": SSH_KEY,
        "phalaDevOs": "false",  # boolean
        "phalaDiskSizeGb": "60",  # integer
        "phalaWaitTimeoutSeconds": "900",
        "phalaVerifyHealth": "false",
        "muxName": "typed-mux",
        "muxImage": MUX_IMAGE,
        "muxChannels[0]": "telegram",  # array element
        "tenants[0].name": "typed-agent",  # object in a list
        "tenants[0].storage": "local",
        "tenants[0].instanceType": "tdx.large",
        "tenants[0].allowDataLoss": "true",  # boolean inside an object
    }
    for path, value in plain.items():
        workspace.set_config(STACK, path, value)
    secrets = {
        "tenantSecrets.typed-agent.masterKey": "typed-master-key-0123456789abcdef0123456789",
        "redpillApiKey": "rp-typed-redpill-key-0123456789",
        "muxMasterKey": "typed-mux-master-key-0123456789abcdef01234",
        "muxTelegramBotToken": "654321:typed-telegram-token-CCCCCCCCCCCC",
    }
    for path, value in secrets.items():
        workspace.set_config(STACK, path, value, secret=True)

    preview = workspace.run("preview", "--json", "--stack", STACK)
    commands = planned_commands(preview.expect_success().json)
    tenant = commands["typed-agent"]
    env = tenant["inputs"]["environment"]
    assert env[protocol.INSTANCE_TYPE] == "tdx.large"
    assert env[protocol.DISK_SIZE_GB] == "60"
    assert env[protocol.DEV_OS] == "false"
    assert env[protocol.WAIT_TIMEOUT_SECONDS] == "900"
    # allowDataLoss arrived as a boolean: the tenant's guard lets its CVM go; the mux's not.
    guards = planned_guards(preview.json)
    assert "delete" not in guards["typed-agent"]["inputs"]
    assert guards["typed-mux"]["inputs"]["delete"]
    assert not any(state.get("protect") for state in (*commands.values(), *guards.values()))

    # Secrets show only as "[secret]" in a preview: deploy, and read them where they land.
    workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()
    tenant_env = emulator.decrypted_env(emulator.cvm_by_name("typed-agent"))
    assert tenant_env["MASTER_KEY"] == secrets["tenantSecrets.typed-agent.masterKey"]
    assert tenant_env["REDPILL_API_KEY"] == secrets["redpillApiKey"]
    mux_env = emulator.decrypted_env(emulator.cvm_by_name("typed-mux"))
    assert mux_env["TELEGRAM_BOT_TOKEN"] == secrets["muxTelegramBotToken"]
    assert emulator.cvm_by_name("typed-agent").instance_type == "tdx.large"


def test_a_new_image_updates_in_place_through_the_driver_update_path(
    workspace: PulumiWorkspace, emulator: PhalaCloudEmulator
) -> None:
    tenants = ("image-agent-0", "image-agent-1")
    deploy(workspace, tenants)
    before = {cvm.name: cvm.vm_uuid for cvm in emulator.cvms()}

    workspace.write_plain_config(STACK, {"openclawImage": IMAGE_V2})
    preview = workspace.run("preview", "--json", "--stack", STACK).expect_success().json
    assert set(preview_ops(preview).values()) == {"update"}
    emulator.clear_log()
    workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()

    # Same CVMs (the update found them through PULUMI_COMMAND_STDOUT), new compose, and
    # the change went through PATCH, not a new provision.
    assert {cvm.name: cvm.vm_uuid for cvm in emulator.cvms()} == before
    for cvm in emulator.cvms():
        assert IMAGE_V2 in cvm.docker_compose_file
        assert cvm.revisions[-1].source == "update"
    writes = {(r.method, r.path.split("/")[1]) for r in write_requests(emulator)}
    assert writes == {("PATCH", "cvms")}


def test_a_local_tenant_is_protected_until_allow_data_loss_then_replaced_delete_first(
    workspace: PulumiWorkspace, emulator: PhalaCloudEmulator
) -> None:
    deploy(workspace, ("keep-agent", "move-agent"))
    old = emulator.cvm_by_name("move-agent")
    config, _ = local_stack_config(("keep-agent", "move-agent"))
    tenants = config["tenants"]
    tenants[1]["instanceType"] = "tdx.large"
    workspace.write_plain_config(STACK, {"tenants": tenants})

    refused = workspace.run("preview", "--stack", STACK)
    assert refused.returncode != 0
    # The program refuses before the engine plans anything, naming the opt-in.
    assert (
        "openclaw-phala:tenants[1].instanceType (tenant move-agent): instanceType "
        "'tdx.medium' -> 'tdx.large' replaces its CVM" in refused.output
    )
    assert "set tenants[1].allowDataLoss: true for this `pulumi up`" in refused.output
    assert "unprotect" not in refused.output and "keep-agent" not in refused.output

    tenants[1]["allowDataLoss"] = True
    workspace.write_plain_config(STACK, {"tenants": tenants})
    emulator.clear_log()
    workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()

    new = emulator.cvm_by_name("move-agent")
    assert new.vm_uuid != old.vm_uuid and new.instance_type == "tdx.large"
    assert [c.name for c in emulator.cvms()].count("move-agent") == 1
    writes = [r.method + " " + r.path for r in write_requests(emulator)]
    deletes = [at for at, call in enumerate(writes) if call.startswith("DELETE /cvms/")]
    assert len(deletes) == 1, writes
    assert deletes[0] < writes.index("POST /cvms/provision"), "delete must come first"
    assert emulator.cvm_by_name("keep-agent").revisions[-1].source == "create"


def test_inputs_do_not_depend_on_the_checkout_path(
    engine_dir: Path, emulator: PhalaCloudEmulator, tmp_path: Path
) -> None:
    config, secret_keys = local_stack_config(("path-agent",))
    planned = []
    for place in ("first/checkout", "elsewhere/deeper/checkout"):
        workspace = PulumiWorkspace(engine_dir, tmp_path / place, emulator)
        try:
            workspace.init_stack(STACK)
            workspace.configure(STACK, config, secret_keys)
            preview = workspace.run("preview", "--json", "--show-secrets", "--stack", STACK)
            planned.append(planned_commands(preview.expect_success().json)["path-agent"]["inputs"])
        finally:
            workspace.close()
    assert planned[0] == planned[1]
    assert str(tmp_path) not in repr(planned[0])

"""The MASTER_KEY and mux register-key guards under the real engine: a first deploy and a
same-key redeploy pass; a changed key fails preview and up before anything is deployed;
the opt-in lets it through once; removing the opt-in afterwards changes nothing."""

from __future__ import annotations

from components import mux_jwt_key
from components.derivation import derive_mux_keys
from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import STACK, local_stack_config, write_requests
from tests.support.stack_configs import master_key_for

TENANTS = ("keyed-agent-0", "keyed-agent-1")
MUX = "keyed-mux"
NEW_KEY = "a-brand-new-master-key-0123456789abcdef0123"
NEW_MUX_MASTER_KEY = "a-brand-new-mux-master-key-0123456789abcdef"


def deploy(workspace: PulumiWorkspace) -> dict:
    config, secret_keys = local_stack_config(TENANTS, mux=MUX)
    workspace.init_stack(STACK)
    workspace.configure(STACK, config, secret_keys)
    workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()
    workspace.run("preview", "--expect-no-changes", "--stack", STACK).expect_success()
    return config


def test_a_changed_master_key_is_refused_until_allow_key_change(
    workspace: PulumiWorkspace, emulator: PhalaCloudEmulator
) -> None:
    config = deploy(workspace)
    workspace.set_secret(STACK, f"tenantSecrets.{TENANTS[1]}.masterKey", NEW_KEY)

    preview = workspace.run("preview", "--stack", STACK)
    assert preview.returncode != 0
    expected = (
        f"openclaw-phala:tenantSecrets.{TENANTS[1]}.masterKey (tenant {TENANTS[1]}): "
        "differs from the key it is running with"
    )
    assert expected in preview.output
    assert "tenants[1].allowKeyChange: true" in preview.output
    assert "openclawId" in preview.output
    assert NEW_KEY not in preview.output and master_key_for(TENANTS[1]) not in preview.output

    emulator.clear_log()
    refused = workspace.run("up", "--yes", "--skip-preview", "--stack", STACK)
    assert refused.returncode != 0 and expected in refused.output
    assert write_requests(emulator) == [], "a refused key must not reach any CVM"
    running = emulator.decrypted_env(emulator.cvm_by_name(TENANTS[1]))
    assert running["MASTER_KEY"] == master_key_for(TENANTS[1])

    tenants = [dict(t) for t in config["tenants"]]
    tenants[1]["allowKeyChange"] = True
    workspace.write_plain_config(STACK, {"tenants": tenants})
    workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()
    assert emulator.decrypted_env(emulator.cvm_by_name(TENANTS[1]))["MASTER_KEY"] == NEW_KEY
    assert emulator.decrypted_env(emulator.cvm_by_name(TENANTS[0]))["MASTER_KEY"] == (
        master_key_for(TENANTS[0])
    )

    tenants[1].pop("allowKeyChange")
    workspace.write_plain_config(STACK, {"tenants": tenants})
    workspace.run("preview", "--expect-no-changes", "--stack", STACK).expect_success()


def test_a_changed_mux_register_key_is_refused_until_mux_allow_key_change(
    workspace: PulumiWorkspace, emulator: PhalaCloudEmulator
) -> None:
    deploy(workspace)
    old_register_key = emulator.decrypted_env(emulator.cvm_by_name(MUX))["MUX_REGISTER_KEY"]
    workspace.set_secret(STACK, "muxMasterKey", NEW_MUX_MASTER_KEY)

    preview = workspace.run("preview", "--stack", STACK)
    assert preview.returncode != 0
    assert f"openclaw-phala:muxMasterKey (mux {MUX}): differs from the key" in preview.output
    # The JWT signing key derives from the same root: the same error names it too.
    assert f"openclaw-phala:muxMasterKey (mux {MUX}, JWT signing key): differs" in preview.output
    assert "muxAllowKeyChange: true" in preview.output
    old_jwt_key = emulator.decrypted_env(emulator.cvm_by_name(MUX))[mux_jwt_key.ENV_NAME]

    workspace.write_plain_config(STACK, {"muxAllowKeyChange": True})
    workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()
    new_register_key = emulator.decrypted_env(emulator.cvm_by_name(MUX))["MUX_REGISTER_KEY"]
    assert new_register_key != old_register_key
    new_jwt_key = emulator.decrypted_env(emulator.cvm_by_name(MUX))[mux_jwt_key.ENV_NAME]
    assert new_jwt_key == mux_jwt_key.env_value(
        derive_mux_keys(NEW_MUX_MASTER_KEY).jwt_private_key_pem
    )
    assert new_jwt_key != old_jwt_key
    workspace.write_plain_config(STACK, {"muxAllowKeyChange": False})
    workspace.run("preview", "--expect-no-changes", "--stack", STACK).expect_success()

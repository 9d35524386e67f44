"""Creating a CVM with the driver and the real CLI: a new one, or adopting what exists."""

from __future__ import annotations

from components.compose import openclaw_compose
from components.cvm_env import tenant_env
from driver import protocol
from emulators.phala import DEFAULT_DEV_IMAGE, STATUS_RUNNING
from tests.driver.driver_sandbox import (
    MASTER_KEY,
    OPENCLAW_IMAGE,
    OPENCLAW_IMAGE_V2,
    OPERATOR_SSH_KEY,
    REDPILL_KEY,
    Sandbox,
    default_env,
    driver_inputs,
    only_cvm,
    patches,
    provisions,
)
from tests.support.emulator_seed import seed_cvm


def test_create_waits_for_running_and_reports_the_cvm_it_made(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    compose = openclaw_compose(OPENCLAW_IMAGE)
    env = tenant_env(MASTER_KEY, REDPILL_KEY, None, None)
    inputs = driver_inputs(
        "alice-gateway",
        compose=compose,
        env=env,
        instance_type="tdx.large",
        disk_size_gb=80,
        dev_os=True,
        ssh_public_key=OPERATOR_SSH_KEY,
    )

    result = sandbox.run("create", inputs)

    assert result.returncode == 0, result.stderr
    cvm = only_cvm(emulator, "alice-gateway")
    assert result.record == {
        "cvmId": cvm.vm_uuid,
        "appId": cvm.app_id,
        "name": "alice-gateway",
        "status": STATUS_RUNNING,
        "gatewayBaseDomain": emulator.gateway_base_domain,
        "composeHash": cvm.compose_hash,
    }
    assert tuple(result.record) == tuple(sorted(protocol.OUTPUT_FIELDS))
    assert emulator.count("GET", "^/cvms/" + cvm.vm_uuid.replace("-", "") + "$") >= 1
    assert (cvm.instance_type, cvm.vcpu, cvm.memory_mb) == ("tdx.large", 4, 8192)
    assert cvm.disk_size_gb == 80
    assert (cvm.prefer_dev, cvm.image) == (True, DEFAULT_DEV_IMAGE)
    provision = emulator.requests("POST", r"^/cvms/provision$")[0].body
    assert (provision["prefer_dev"], provision["disk_size"]) == (True, 80)
    assert cvm.docker_compose_file == compose  # byte-exact
    decrypted = emulator.decrypted_env(cvm)
    expected = {**env.values, "DSTACK_AUTHORIZED_KEYS": OPERATOR_SSH_KEY}
    assert decrypted == expected
    assert list(decrypted) == list(expected)
    assert provisions(emulator) == 1


def test_create_for_an_existing_name_adopts_it_and_updates_it_in_place(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    existing = seed_cvm(emulator, "bob-gateway", openclaw_compose(OPENCLAW_IMAGE))
    new_compose = openclaw_compose(OPENCLAW_IMAGE_V2)

    result = sandbox.run("create", driver_inputs("bob-gateway", compose=new_compose))

    assert result.returncode == 0, result.stderr
    assert "adopting existing CVM bob-gateway" in result.stderr
    cvm = only_cvm(emulator, "bob-gateway")
    assert cvm.vm_uuid == existing.vm_uuid == result.record["cvmId"]
    assert [revision.source for revision in cvm.revisions] == ["create", "update"]
    assert cvm.docker_compose_file == new_compose
    assert emulator.decrypted_env(cvm) == dict(default_env("openclaw").values)
    assert (provisions(emulator), patches(emulator)) == (0, 1)


def test_create_with_a_configured_cvm_id_adopts_that_cvm(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    existing = seed_cvm(emulator, "carol-gateway", openclaw_compose(OPENCLAW_IMAGE))
    # The bare 40-hex app id, as an operator would paste it from the dashboard.
    inputs = driver_inputs("carol-gateway", existing_cvm_id=existing.app_id)

    result = sandbox.run("create", inputs)

    assert result.returncode == 0, result.stderr
    assert result.record["cvmId"] == existing.vm_uuid
    assert emulator.count("GET", r"^/apps$") == 0  # no name search when the id is given
    assert (provisions(emulator), patches(emulator)) == (0, 1)
    assert len(emulator.cvms()) == 1


def test_create_refuses_when_two_cvms_share_the_name(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    emulator.configure(allow_duplicate_names=True)
    first = seed_cvm(emulator, "dave-gateway", openclaw_compose(OPENCLAW_IMAGE))
    second = seed_cvm(emulator, "dave-gateway", openclaw_compose(OPENCLAW_IMAGE))

    result = sandbox.run("create", driver_inputs("dave-gateway"))

    assert result.returncode == 1
    assert result.stdout == ""
    assert "2 CVMs are named 'dave-gateway'" in result.stderr
    assert first.app_id in result.stderr and second.app_id in result.stderr
    assert "set cvmId" in result.stderr
    assert (provisions(emulator), patches(emulator)) == (0, 0)

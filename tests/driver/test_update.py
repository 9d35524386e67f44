"""Updating a CVM in place, and refusing to touch a CVM of another role or name."""

from __future__ import annotations

from components.compose import mux_compose, openclaw_compose
from components.cvm_env import tenant_env
from emulators.phala import STATUS_RUNNING
from tests.driver.driver_sandbox import (
    MASTER_KEY,
    MUX_IMAGE,
    OPENCLAW_IMAGE,
    OPENCLAW_IMAGE_V2,
    OPERATOR_SSH_KEY,
    Sandbox,
    default_env,
    driver_inputs,
    only_cvm,
    patches,
    provisions,
    recorded_stdout,
)
from tests.support.emulator_seed import seed_cvm


def test_update_changes_compose_and_env_in_place_and_keeps_the_ssh_key(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    created = sandbox.run(
        "create", driver_inputs("erin-gateway", dev_os=True, ssh_public_key=OPERATOR_SSH_KEY)
    )
    assert created.returncode == 0, created.stderr
    new_compose = openclaw_compose(OPENCLAW_IMAGE_V2)
    new_env = tenant_env(MASTER_KEY, "rp-rotated-redpill-key-000111", None, None)
    inputs = driver_inputs(
        "erin-gateway",
        compose=new_compose,
        env=new_env,
        dev_os=True,
        ssh_public_key=OPERATOR_SSH_KEY,
    )

    updated = sandbox.run("update", inputs, previous_stdout=created.stdout)

    assert updated.returncode == 0, updated.stderr
    cvm = only_cvm(emulator, "erin-gateway")
    assert updated.record["cvmId"] == created.record["cvmId"] == cvm.vm_uuid
    assert updated.record["composeHash"] == cvm.compose_hash != created.record["composeHash"]
    assert updated.record["status"] == STATUS_RUNNING
    assert [revision.source for revision in cvm.revisions] == ["create", "update"]
    assert cvm.docker_compose_file == new_compose
    assert emulator.decrypted_env(cvm) == {
        **new_env.values,
        "DSTACK_AUTHORIZED_KEYS": OPERATOR_SSH_KEY,
    }
    assert provisions(emulator) == 1


def test_configured_cvm_id_of_a_differently_named_cvm_is_refused_without_a_patch(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    stranger = seed_cvm(emulator, "someone-else", openclaw_compose(OPENCLAW_IMAGE))

    result = sandbox.run("create", driver_inputs("frank-gateway", existing_cvm_id=stranger.vm_uuid))

    assert result.returncode == 1
    assert "refusing to deploy the openclaw compose" in result.stderr
    assert "named 'someone-else', not 'frank-gateway'" in result.stderr
    assert (provisions(emulator), patches(emulator)) == (0, 0)
    assert only_cvm(emulator, "someone-else").revisions == stranger.revisions


def test_mux_compose_never_lands_on_a_cvm_running_openclaw(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    gateway = seed_cvm(emulator, "shared-name", openclaw_compose(OPENCLAW_IMAGE))

    adopted = sandbox.run("create", driver_inputs("shared-name", role="mux"))
    updated = sandbox.run(
        "update", driver_inputs("shared-name", role="mux"), recorded_stdout(gateway)
    )

    for result in (adopted, updated):
        assert result.returncode == 1
        assert "refusing to deploy the mux compose" in result.stderr
        assert "it runs the openclaw service" in result.stderr
    assert (provisions(emulator), patches(emulator)) == (0, 0)
    assert only_cvm(emulator, "shared-name").docker_compose_file == gateway.docker_compose_file


def test_openclaw_compose_never_lands_on_the_mux_cvm_and_never_deletes_it(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    mux = seed_cvm(emulator, "mux-main", mux_compose(MUX_IMAGE))
    inputs = driver_inputs("mux-main", role="openclaw")

    adopted = sandbox.run("create", inputs)
    updated = sandbox.run("update", inputs, recorded_stdout(mux))
    deleted = sandbox.run("delete", inputs, recorded_stdout(mux))

    for result in (adopted, updated, deleted):
        assert result.returncode == 1
        assert "it runs the mux-server service" in result.stderr
    assert (provisions(emulator), patches(emulator)) == (0, 0)
    assert emulator.count("DELETE") == 0
    assert only_cvm(emulator, "mux-main").docker_compose_file == mux.docker_compose_file


def test_update_recreates_a_cvm_deleted_behind_our_back(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    gone = seed_cvm(emulator, "xena-gateway", openclaw_compose(OPENCLAW_IMAGE))
    emulator.delete_behind_back(gone.vm_uuid)

    result = sandbox.run("update", driver_inputs("xena-gateway"), recorded_stdout(gone))

    assert result.returncode == 0, result.stderr
    assert "no longer exists" in result.stderr
    recreated = only_cvm(emulator, "xena-gateway")
    assert result.record["cvmId"] == recreated.vm_uuid != gone.vm_uuid
    assert emulator.decrypted_env(recreated) == dict(default_env("openclaw").values)


def test_update_restores_a_compose_changed_outside(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    compose = openclaw_compose(OPENCLAW_IMAGE)
    cvm = seed_cvm(emulator, "yara-gateway", compose)
    emulator.change_compose_externally(cvm.vm_uuid, openclaw_compose(OPENCLAW_IMAGE_V2))

    result = sandbox.run("update", driver_inputs("yara-gateway"), recorded_stdout(cvm))

    assert result.returncode == 0, result.stderr
    restored = only_cvm(emulator, "yara-gateway")
    assert restored.vm_uuid == cvm.vm_uuid
    assert restored.docker_compose_file == compose
    assert [revision.source for revision in restored.revisions] == ["create", "external", "update"]
    assert result.record["composeHash"] == restored.compose_hash

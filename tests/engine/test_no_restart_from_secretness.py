"""No silent restart from secretness, under the real engine with the faithful command
stand-in (whose Diff, like the real provider's, sees plain "x" and secret "x" as a change).

One deployed stack (a mux, an s3 tenant, a local tenant) is re-configured the ways an
operator writes the same intent differently; after each, a preview must find nothing to
change, so no driver runs and no CVM restarts. The forms:
- a secret key set again with `--secret` (same value, new ciphertext);
- plain keys later set with `--secret`: refused at preview, naming each (so none can ever
  travel secret), and fine again once set plain;
- explicit mux keys replacing the ones derived from muxMasterKey (same values).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from components.derivation import derive_mux_keys
from emulators.cloudflare import CloudflareEmulator
from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import STACK, write_requests
from tests.support.stack_configs import (
    ACCOUNT_ID,
    IMAGE,
    MUX_IMAGE,
    MUX_MASTER_KEY,
    REDPILL_KEY,
    SSH_KEY,
    base_config,
    master_key_for,
    with_secrets,
)

S3_TENANT, LOCAL_TENANT, MUX = "steady-agent", "steady-local", "steady-mux"


@pytest.fixture(scope="module")
def stack(
    engine_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[PulumiWorkspace, PhalaCloudEmulator, CloudflareEmulator]]:
    config, secret_keys = with_secrets(
        base_config(
            tenants=[{"name": S3_TENANT}, {"name": LOCAL_TENANT, "storage": "local"}],
            muxName=MUX,
            muxImage=MUX_IMAGE,
            muxChannels=["telegram"],
            muxTelegramBotUsername="steady_example_bot",
            phalaVerifyHealth=False,
        )
    )
    with (
        PhalaCloudEmulator(provision_seconds=0.2, update_seconds=0.2) as phala,
        CloudflareEmulator(account_id=ACCOUNT_ID) as cloudflare,
    ):
        workspace = PulumiWorkspace(
            engine_dir, tmp_path_factory.mktemp("steady"), phala, cloudflare
        )
        try:
            workspace.init_stack(STACK)
            workspace.configure(STACK, config, secret_keys)
            workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()
            yield workspace, phala, cloudflare
        finally:
            workspace.close()


def nothing_changes(workspace: PulumiWorkspace, phala: PhalaCloudEmulator) -> None:
    workspace.run("preview", "--expect-no-changes", "--stack", STACK).expect_success()
    phala.clear_log()
    workspace.run("up", "--yes", "--expect-no-changes", "--stack", STACK).expect_success()
    assert write_requests(phala) == [], "no CVM may be redeployed"


def test_secret_keys_set_again_with_secret_change_nothing(stack: tuple) -> None:
    workspace, phala, _ = stack
    workspace.set_secret(STACK, "redpillApiKey", REDPILL_KEY)
    workspace.set_secret(STACK, f"tenantSecrets.{S3_TENANT}.masterKey", master_key_for(S3_TENANT))
    nothing_changes(workspace, phala)


def test_plain_keys_later_set_with_secret_are_refused_naming_each_and_deploy_nothing(
    stack: tuple,
) -> None:
    workspace, phala, _ = stack
    plain = {
        "openclawImage": IMAGE,
        "phalaSshPublicKey": SSH_KEY,
        "muxTelegramBotUsername": "steady_example_bot",
    }
    for path, value in plain.items():
        workspace.set_secret(STACK, path, value)
    phala.clear_log()
    refused = workspace.run("preview", "--stack", STACK)
    assert refused.returncode != 0
    for key in plain:
        assert f"openclaw-phala:{key}: must be plain, not a secret" in refused.output
    assert write_requests(phala) == []
    # Set plain again, as the refusal says: the stack is as it was, nothing to change.
    workspace.write_plain_config(STACK, plain)
    nothing_changes(workspace, phala)


def test_explicit_mux_keys_replacing_the_derived_ones_change_nothing(stack: tuple) -> None:
    workspace, phala, _ = stack
    derived = derive_mux_keys(MUX_MASTER_KEY)
    workspace.set_secret(STACK, "muxRegisterKey", derived.register_key)
    workspace.set_secret(STACK, "muxAdminToken", derived.admin_token)
    nothing_changes(workspace, phala)

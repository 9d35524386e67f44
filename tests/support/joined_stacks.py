"""A mux stack and a tenants stack joined by `muxStack`, as Pulumi.mux.yaml and
Pulumi.tenants.yaml are shaped: configs, a deploy, and what a tenant was told of the mux."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.stack_configs import MUX_IMAGE, SSH_KEY, base_config, with_secrets

MUX_STACK = "mux"
TENANTS_STACK = "tenants"
MUX_STACK_NAME = f"organization/openclaw-phala/{MUX_STACK}"


def mux_stack_config(mux: str) -> tuple[dict[str, Any], list[str]]:
    """A mux on its own stack; muxAllowDataLoss so that a test can destroy it directly."""
    return with_secrets(
        {
            "muxName": mux,
            "muxImage": MUX_IMAGE,
            "muxChannels": ["telegram"],
            "muxAllowDataLoss": True,
            "phalaSshPublicKey": SSH_KEY,
            "phalaVerifyHealth": False,  # the emulator's gateway domain does not resolve
        }
    )


def tenants_stack_config(tenants: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """R2-backed tenants (bucket and token from the Cloudflare emulator) joining the mux."""
    return with_secrets(
        base_config(
            tenants=[{"name": name, "storage": "s3"} for name in tenants],
            muxStack=MUX_STACK_NAME,
            phalaVerifyHealth=False,
        )
    )


def configure_joined_stacks(workspace: PulumiWorkspace, mux: str, tenants: Sequence[str]) -> None:
    for stack, (config, secret_keys) in (
        (MUX_STACK, mux_stack_config(mux)),
        (TENANTS_STACK, tenants_stack_config(tenants)),
    ):
        workspace.init_stack(stack)
        workspace.configure(stack, config, secret_keys)


def up(workspace: PulumiWorkspace, stack: str, *extra: str) -> None:
    workspace.run("up", "--yes", "--skip-preview", "--stack", stack, *extra).expect_success()


def mux_outputs(workspace: PulumiWorkspace) -> dict[str, Any]:
    args = ("stack", "output", "--json", "--show-secrets", "--stack", MUX_STACK)
    return workspace.run(*args).expect_success().json


def joined_mux(emulator: PhalaCloudEmulator, tenant: str) -> dict[str, Any]:
    """The mux endpoint a tenant CVM was given in its bootstrap config."""
    env = emulator.decrypted_env(emulator.cvm_by_name(tenant))
    config = json.loads(base64.b64decode(env["OPENCLAW_CONFIG_B64"]))
    return config["gateway"]["http"]["endpoints"]["mux"]


def share_stack_files(source: PulumiWorkspace, destination: PulumiWorkspace) -> None:
    """What git does between two operators: the stack files (config, encrypted secrets,
    the passphrase's salt) go from one checkout to the other."""
    for stack in (MUX_STACK, TENANTS_STACK):
        destination.stack_file(stack).write_text(source.stack_file(stack).read_text())

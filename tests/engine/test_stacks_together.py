"""A mux stack and a tenants-only stack in one backend, joined by `muxStack`.

The tests share one backend and service: the mux stack deployed and the tenants stack
configured once; each test takes the stacks from there (an `up` of the tenants stack is
idempotent) and puts back what it changed in the config.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import (
    engine_emulator,
    engine_operations,
    local_stack_config,
    opened_workspace,
)
from tests.support.secret_scan import scan_text
from tests.support.stack_configs import MUX_IMAGE, SSH_KEY

MUX_STACK = "mux"
TENANTS_STACK = "tenants"
MUX_STACK_NAME = "organization/openclaw-phala/mux"
TENANTS = ("joined-agent-0", "joined-agent-1")
NEW_MUX_MASTER_KEY = "rotated-mux-master-key-0123456789abcdef0123"


@pytest.fixture(scope="module")
def emulator() -> Iterator[PhalaCloudEmulator]:
    with engine_emulator() as running:
        yield running


@pytest.fixture(scope="module")
def stacks(
    engine_dir: Path, emulator: PhalaCloudEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PulumiWorkspace]:
    root = tmp_path_factory.mktemp("joined") / "engine"
    with opened_workspace(engine_dir, root, emulator) as workspace:
        _deploy_the_mux_and_configure_the_tenants(workspace)
        yield workspace


def _deploy_the_mux_and_configure_the_tenants(workspace: PulumiWorkspace) -> None:
    mux_config: dict[str, Any] = {
        "muxName": "shared-mux",
        "muxImage": MUX_IMAGE,
        "muxChannels": ["telegram"],
        "phalaSshPublicKey": SSH_KEY,
        "phalaVerifyHealth": False,
    }
    workspace.init_stack(MUX_STACK)
    workspace.write_plain_config(MUX_STACK, mux_config)
    workspace.set_secret(MUX_STACK, "muxMasterKey", "first-mux-master-key-0123456789abcdef01234")
    workspace.set_secret(MUX_STACK, "muxTelegramBotToken", "123:telegram-token-for-joined-stacks")
    workspace.run("up", "--yes", "--skip-preview", "--stack", MUX_STACK).expect_success()

    config, secret_keys = local_stack_config(TENANTS, muxStack=MUX_STACK_NAME)
    workspace.init_stack(TENANTS_STACK)
    workspace.configure(TENANTS_STACK, config, secret_keys)


def mux_outputs(workspace: PulumiWorkspace) -> dict[str, Any]:
    args = ("stack", "output", "--json", "--show-secrets", "--stack", MUX_STACK)
    return workspace.run(*args).expect_success().json


def bootstrap(emulator: PhalaCloudEmulator, tenant: str) -> dict[str, Any]:
    env = emulator.decrypted_env(emulator.cvm_by_name(tenant))
    return json.loads(base64.b64decode(env["OPENCLAW_CONFIG_B64"]))["gateway"]["http"]["endpoints"][
        "mux"
    ]


def test_tenants_join_the_mux_of_the_other_stack_and_its_key_stays_secret(
    stacks: PulumiWorkspace, emulator: PhalaCloudEmulator
) -> None:
    stacks.run("up", "--yes", "--skip-preview", "--stack", TENANTS_STACK).expect_success()
    mux = mux_outputs(stacks)
    register_key = mux["muxSecrets"]["registerKey"]
    for tenant in TENANTS:
        joined = bootstrap(emulator, tenant)
        assert joined["baseUrl"] == mux["mux"]["baseUrl"]
        assert joined["registerKey"] == register_key

    exported = stacks.run("stack", "export", "--stack", TENANTS_STACK).expect_success()
    assert scan_text("tenants stack export", exported.stdout, {"register key": register_key}) == []
    resources = exported.json["deployment"]["resources"]
    (reference,) = [r for r in resources if r["urn"].endswith("::mux-stack")]
    assert "muxSecrets" in reference["outputs"]["secretOutputNames"]


def test_a_new_mux_register_key_updates_exactly_the_tenants(
    stacks: PulumiWorkspace, emulator: PhalaCloudEmulator
) -> None:
    stacks.run("up", "--yes", "--skip-preview", "--stack", TENANTS_STACK).expect_success()
    stacks.set_secret(MUX_STACK, "muxMasterKey", NEW_MUX_MASTER_KEY)
    stacks.write_plain_config(MUX_STACK, {"muxAllowKeyChange": True})
    stacks.run("up", "--yes", "--skip-preview", "--stack", MUX_STACK).expect_success()
    new_key = mux_outputs(stacks)["muxSecrets"]["registerKey"]

    preview = stacks.run("preview", "--json", "--stack", TENANTS_STACK).expect_success()
    assert engine_operations(preview.json) == {f"{t}-deploy": "update" for t in TENANTS}
    stacks.run("up", "--yes", "--skip-preview", "--stack", TENANTS_STACK).expect_success()
    for tenant in TENANTS:
        assert bootstrap(emulator, tenant)["registerKey"] == new_key


@pytest.mark.parametrize(
    "mux_stack",
    ["organization/openclaw-phala/no-such-stack", "organization/openclaw-phala/tenants"],
)
def test_a_missing_or_misnamed_mux_stack_fails_the_preview_in_one_line(
    stacks: PulumiWorkspace, mux_stack: str
) -> None:
    stacks.write_plain_config(TENANTS_STACK, {"muxStack": mux_stack})
    try:
        preview = stacks.run("preview", "--stack", TENANTS_STACK)
    finally:
        stacks.write_plain_config(TENANTS_STACK, {"muxStack": MUX_STACK_NAME})
    assert preview.returncode != 0
    assert f"muxStack {mux_stack}" in preview.output, preview.output
    assert "Traceback" not in preview.output

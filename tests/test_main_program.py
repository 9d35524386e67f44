"""The real __main__.py evaluated under Pulumi's mock runtime."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import derivation, mux_jwt_key
from components.derivation import derive_mux_keys
from components.key_change import key_fingerprint
from components.openclaw_config import INBOUND_URL_TEMPLATE
from driver import protocol
from driver.dstack_env import delivery_problem
from plan.evaluate import (
    BUCKET_TYPE,
    BUCKET_WRITE_GROUP_ID,
    TOKEN_TYPE,
    ProgramRun,
    fake_app_id,
    fake_token_id,
    fake_token_value,
    is_secret,
    run_program,
    unwrap,
)
from tests.support.stack_configs import (
    ACCOUNT_ID,
    DISCORD_TOKEN,
    MUX_MASTER_KEY,
    REDPILL_KEY,
    TELEGRAM_TOKEN,
    all_local,
    all_s3,
    many_tenants,
    master_key_for,
    prod_config,
)

TENANT_TYPE = "openclaw-phala:index:OpenClawTenant"
STORAGE_TYPE = "openclaw-phala:index:TenantStorage"
CVM_TYPE = "openclaw-phala:index:PhalaCvm"
MUX_TYPE = "openclaw-phala:index:MuxServer"
PROD_TENANTS = ("alice-agent", "bob-agent", "staging-agent")


@pytest.fixture(scope="module")
def prod_run() -> ProgramRun:
    config, secret_keys = prod_config()
    return run_program(config, secret_keys)


def _env(run: ProgramRun, cvm_name: str) -> dict[str, Any]:
    return run.named(f"{cvm_name}-deploy").inputs["environment"]


# --------------------------------------------------------------------------- graph


def test_prod_stack_creates_one_mux_and_a_cvm_per_tenant(prod_run: ProgramRun) -> None:
    assert [r.name for r in prod_run.of_type(MUX_TYPE)] == ["openclaw-mux"]
    assert sorted(r.name for r in prod_run.of_type(TENANT_TYPE)) == sorted(PROD_TENANTS)
    assert sorted(r.name for r in prod_run.deploy_commands) == sorted(
        [f"{name}-deploy" for name in (*PROD_TENANTS, "openclaw-mux")]
    )


def test_only_s3_tenants_get_a_bucket_and_a_token(prod_run: ProgramRun) -> None:
    assert sorted(r.name for r in prod_run.of_type(BUCKET_TYPE)) == [
        "alice-agent-storage-bucket",
        "bob-agent-storage-bucket",
    ]
    assert sorted(r.name for r in prod_run.of_type(TOKEN_TYPE)) == [
        "alice-agent-storage-token",
        "bob-agent-storage-token",
    ]


def test_every_child_sits_under_its_tenants_component(prod_run: ProgramRun) -> None:
    for tenant in ("alice-agent", "bob-agent"):
        storage = prod_run.named(f"{tenant}-storage")
        assert prod_run.by_urn(storage.parent).name == tenant
        assert prod_run.by_urn(storage.parent).type == TENANT_TYPE
        for child in (f"{tenant}-storage-bucket", f"{tenant}-storage-token"):
            assert prod_run.named(child).parent == storage.urn
    for tenant in PROD_TENANTS:
        command = prod_run.named(f"{tenant}-deploy")
        cvm = prod_run.by_urn(command.parent)
        assert cvm.type == CVM_TYPE
        assert prod_run.by_urn(cvm.parent).name == tenant
    mux_command = prod_run.named("openclaw-mux-deploy")
    mux_cvm = prod_run.by_urn(mux_command.parent)
    assert prod_run.by_urn(mux_cvm.parent).type == MUX_TYPE


def test_bucket_inputs_follow_the_tenant_settings(prod_run: ProgramRun) -> None:
    alice = prod_run.named("alice-agent-storage-bucket").plain_inputs
    bob = prod_run.named("bob-agent-storage-bucket").plain_inputs
    assert alice == {
        "accountId": ACCOUNT_ID,
        "name": "openclaw-alice-agent",
        "jurisdiction": "default",
    }
    assert bob == {"accountId": ACCOUNT_ID, "name": "openclaw-bob-agent-eu", "jurisdiction": "eu"}


def test_buckets_are_retained_when_a_tenant_is_removed(prod_run: ProgramRun) -> None:
    assert all(r.retain_on_delete for r in prod_run.of_type(BUCKET_TYPE))


def test_token_may_only_write_items_of_its_own_bucket(prod_run: ProgramRun) -> None:
    token = prod_run.named("bob-agent-storage-token").plain_inputs
    assert token["accountId"] == ACCOUNT_ID
    assert token["name"] == "openclaw-phala-openclaw-bob-agent-eu-rw"
    (policy,) = token["policies"]
    assert policy["effect"] == "allow"
    assert policy["permissionGroups"] == [{"id": BUCKET_WRITE_GROUP_ID}]
    assert json.loads(policy["resources"]) == {
        f"com.cloudflare.edge.r2.bucket.{ACCOUNT_ID}_eu_openclaw-bob-agent-eu": "*"
    }


def test_permission_group_is_looked_up_once_by_name(prod_run: ProgramRun) -> None:
    lookups = [c for c in prod_run.calls if "PermissionGroupsList" in c.token]
    assert len(lookups) == 1
    assert lookups[0].args == {"accountId": ACCOUNT_ID}


def test_s3_credentials_are_secret_though_the_token_value_comes_back_unmarked(
    prod_run: ProgramRun,
) -> None:
    # The fake provider returns the token's id and value unmarked (only a real engine
    # applies pulumi_cloudflare's additional_secret_outputs): the storage component's own
    # wrapping is all that keeps the credentials secret here.
    for storage in prod_run.of_type(STORAGE_TYPE):
        outputs = prod_run.component_outputs[storage.urn]
        for name in ("s3AccessKeyId", "s3SecretAccessKey"):
            assert is_secret(outputs[name]), (storage.name, name)
        env = unwrap(_env(prod_run, storage.name.removesuffix("-storage")))
        assert env[protocol.env_value_var("AWS_SECRET_ACCESS_KEY")] == unwrap(
            outputs["s3SecretAccessKey"]
        )


# --------------------------------------------------------------------------- CVM commands


def test_cvm_command_runs_the_driver_by_relative_path(prod_run: ProgramRun) -> None:
    for command in prod_run.deploy_commands:
        inputs = command.plain_inputs
        # The Phala API key is an operator credential, never a resource input: rotating
        # it must not redeploy anything, and deletes use the current key.
        assert protocol.API_KEY not in inputs["environment"]
        assert inputs["create"] == "python3 -I -S driver/phala_cvm.py create"
        assert inputs["update"] == "python3 -I -S driver/phala_cvm.py update"
        assert inputs["delete"] == "python3 -I -S driver/phala_cvm.py delete"
        assert inputs["logging"] == "none"
        assert command.additional_secret_outputs == ["stdout", "stderr"]
        assert command.delete_before_replace


def test_replacement_triggers_are_the_settings_phala_cannot_update(prod_run: ProgramRun) -> None:
    bob = prod_run.named("bob-agent-deploy").plain_inputs
    assert bob["triggers"] == ["bob-agent", "tdx.large", 40, "", "phala", "", True]
    assert prod_run.named("bob-agent-deploy").replace_on_changes == ["triggers[*]"]


def test_no_resource_uses_the_engines_protect_whose_errors_advise_state_unprotect(
    prod_run: ProgramRun,
) -> None:
    assert [r.name for r in prod_run.registrations if r.protect] == []


def test_cvms_with_local_state_have_a_guard_named_after_their_opt_in(
    prod_run: ProgramRun,
) -> None:
    guards = {r.name: r for r in prod_run.guards}
    assert set(guards) == {
        "staging-agent-local-state-needs-allowDataLoss",
        "openclaw-mux-local-state-needs-muxAllowDataLoss",
    }
    for guard_name, cvm_name, how in (
        (
            "staging-agent-local-state-needs-allowDataLoss",
            "staging-agent",
            "set allowDataLoss: true on tenant staging-agent",
        ),
        (
            "openclaw-mux-local-state-needs-muxAllowDataLoss",
            "openclaw-mux",
            "set muxAllowDataLoss: true",
        ),
    ):
        guard, deploy = guards[guard_name], prod_run.named(f"{cvm_name}-deploy")
        # Deleted before the CVM (it depends on it), never replaced, and its delete
        # fails with a message that names the opt-in.
        assert deploy.urn in guard.dependencies
        assert "triggers" not in guard.plain_inputs and "create" not in guard.plain_inputs
        assert (
            guard.plain_inputs["delete"] == 'printf "%s\\n" "$OPENCLAW_PHALA_REFUSAL" >&2; exit 1'
        )
        refusal = guard.plain_inputs["environment"]["OPENCLAW_PHALA_REFUSAL"]
        assert refusal.startswith(f"refusing to delete CVM {cvm_name}: ")
        assert how in refusal and "unprotect" not in refusal


def test_the_guard_runs_its_refusal_and_fails(prod_run: ProgramRun) -> None:
    inputs = prod_run.named("staging-agent-local-state-needs-allowDataLoss").plain_inputs
    ran = subprocess.run(
        ["/bin/sh", "-c", inputs["delete"]],
        env={**os.environ, **inputs["environment"]},
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 1
    assert ran.stderr == inputs["environment"]["OPENCLAW_PHALA_REFUSAL"] + "\n"


def test_allow_data_loss_releases_the_guard() -> None:
    config, secret_keys = all_local(1)
    config["tenants"][0]["allowDataLoss"] = True
    run = run_program(config, secret_keys)
    guard = run.named("local-agent-0-local-state-needs-allowDataLoss").plain_inputs
    assert "delete" not in guard and "environment" not in guard


def test_tenant_env_carries_keys_and_s3_settings(prod_run: ProgramRun) -> None:
    env = unwrap(_env(prod_run, "bob-agent"))
    names = env[protocol.ENV_KEYS].split(",")
    assert names == [
        "MASTER_KEY",
        "REDPILL_API_KEY",
        "S3_BUCKET",
        "S3_PREFIX",
        "S3_ENDPOINT",
        "S3_PROVIDER",
        "S3_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "OPENCLAW_CONFIG_B64",
    ]
    value = {name: env[protocol.env_value_var(name)] for name in names}
    assert value["MASTER_KEY"] == master_key_for("bob-agent")
    assert value["REDPILL_API_KEY"] == REDPILL_KEY
    assert value["S3_BUCKET"] == "openclaw-bob-agent-eu"
    assert value["S3_ENDPOINT"] == f"https://{ACCOUNT_ID}.eu.r2.cloudflarestorage.com"
    assert (value["S3_PROVIDER"], value["S3_REGION"], value["S3_PREFIX"]) == (
        "Cloudflare",
        "auto",
        "openclaw-data",
    )
    assert value["AWS_ACCESS_KEY_ID"] == fake_token_id("bob-agent-storage-token", ACCOUNT_ID)
    token = fake_token_value("bob-agent-storage-token", ACCOUNT_ID)
    assert value["AWS_SECRET_ACCESS_KEY"] == hashlib.sha256(token.encode()).hexdigest()
    assert env[protocol.CVM_NAME] == "bob-agent"
    assert env[protocol.ROLE] == "openclaw"
    assert env[protocol.INSTANCE_TYPE] == "tdx.large"


def test_local_tenant_env_has_no_s3_settings(prod_run: ProgramRun) -> None:
    env = unwrap(_env(prod_run, "staging-agent"))
    assert env[protocol.ENV_KEYS] == "MASTER_KEY,REDPILL_API_KEY,OPENCLAW_CONFIG_B64"


def test_secret_env_values_are_secret_and_the_rest_plain(prod_run: ProgramRun) -> None:
    env = _env(prod_run, "bob-agent")
    names = unwrap(env[protocol.ENV_KEYS]).split(",")
    secret_names = set(unwrap(env[protocol.SECRET_ENV_KEYS]).split(","))
    assert secret_names == {
        "MASTER_KEY",
        "REDPILL_API_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "OPENCLAW_CONFIG_B64",
    }
    for name in names:
        assert is_secret(env[protocol.env_value_var(name)]) == (name in secret_names), name
    assert not is_secret(env[protocol.COMPOSE])


def test_compose_is_a_plain_input_with_the_pinned_image(prod_run: ProgramRun) -> None:
    env = _env(prod_run, "alice-agent")
    compose = env[protocol.COMPOSE]
    assert not is_secret(compose)
    digest = "36f85260e6720e7201aaeef111d24f77e50d84047cd9b645a125806fcc6713fc"
    assert f"    image: h4x3rotab/openclaw-cvm@sha256:{digest}\n" in compose
    mux_compose = _env(prod_run, "openclaw-mux")[protocol.COMPOSE]
    assert "image: h4x3rotab/openclaw-mux@sha256:6ee929b1" in mux_compose


# --------------------------------------------------------------------------- mux wiring


def test_every_tenant_deploy_waits_for_the_mux_deploy(prod_run: ProgramRun) -> None:
    # A dependency, not registration order: the engine creates in parallel whatever does
    # not depend on something else, so only this makes the mux exist before its tenants.
    mux_deploy = prod_run.named("openclaw-mux-deploy").urn
    for tenant in PROD_TENANTS:
        assert mux_deploy in prod_run.named(f"{tenant}-deploy").dependencies, tenant


def test_tenant_bootstrap_config_points_at_the_mux(prod_run: ProgramRun) -> None:
    env = unwrap(_env(prod_run, "alice-agent"))
    config = json.loads(base64.b64decode(env[protocol.env_value_var("OPENCLAW_CONFIG_B64")]))
    mux = config["gateway"]["http"]["endpoints"]["mux"]
    mux_app = fake_app_id("openclaw-mux")
    assert mux["baseUrl"] == f"https://{mux_app}-18891.dstack-pha-test.phala.network"
    assert mux["registerKey"] == derivation.mux_register_key(MUX_MASTER_KEY)
    assert mux["inboundUrl"] == INBOUND_URL_TEMPLATE
    assert mux["enabled"] is True
    assert config["gateway"]["auth"]["token"] == derivation.gateway_token(
        master_key_for("alice-agent")
    )
    for channel in ("telegram", "discord", "whatsapp"):
        assert config["channels"][channel]["accounts"]["mux"]["mux"]["enabled"] is True


def test_mux_env_carries_its_secrets(prod_run: ProgramRun) -> None:
    env = _env(prod_run, "openclaw-mux")
    plain = unwrap(env)
    assert plain[protocol.ROLE] == "mux"
    keys = derivation.derive_mux_keys(MUX_MASTER_KEY)
    expected = {
        "MUX_REGISTER_KEY": keys.register_key,
        "MUX_ADMIN_TOKEN": keys.admin_token,
        "MUX_JWT_PRIVATE_KEY_B64": mux_jwt_key.env_value(keys.jwt_private_key_pem),
        "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
        "DISCORD_BOT_TOKEN": DISCORD_TOKEN,
    }
    for name, value in expected.items():
        assert plain[protocol.env_value_var(name)] == value
        assert is_secret(env[protocol.env_value_var(name)])
    # The driver scrubs exactly the values named here from everything it prints.
    assert set(plain[protocol.SECRET_ENV_KEYS].split(",")) == set(expected)
    assert plain[protocol.env_value_var("MUX_TELEGRAM_BOT_USERNAME")] == "openclaw_example_bot"


def test_mux_gets_its_jwt_key_on_one_line_and_never_the_multi_line_pem(
    prod_run: ProgramRun,
) -> None:
    # dstack would hand a multi-line PEM over with literal \n for its line breaks and
    # the mux would not start (driver/dstack_env.py); compose/mux.yml decodes this one.
    plain = unwrap(_env(prod_run, "openclaw-mux"))
    names = plain[protocol.ENV_KEYS].split(",")
    assert "MUX_JWT_PRIVATE_KEY_B64" in names and "MUX_JWT_PRIVATE_KEY" not in names
    assert "\n" not in plain[protocol.env_value_var("MUX_JWT_PRIVATE_KEY_B64")]
    pem = derivation.derive_mux_keys(MUX_MASTER_KEY).jwt_private_key_pem
    assert prod_run.plain_exports["mux"]["jwtKeyId"] == mux_jwt_key.key_id(pem)


def test_every_cvm_env_value_reaches_its_container_intact_through_dstack(
    prod_run: ProgramRun,
) -> None:
    checked = 0
    for command in prod_run.deploy_commands:
        plain = unwrap(command.inputs["environment"])
        for name in plain[protocol.ENV_KEYS].split(","):
            value = plain[protocol.env_value_var(name)]
            assert delivery_problem(value) is None, (command.name, name)
            checked += 1
    assert checked >= 4 * len(prod_run.deploy_commands)


# --------------------------------------------------------------------------- outputs


def test_outputs_follow_the_documented_contract(prod_run: ProgramRun) -> None:
    exports = prod_run.plain_exports
    assert exports["contractVersion"] == 1
    alice = exports["tenants"]["alice-agent"]
    app_id = fake_app_id("alice-agent")
    host = "dstack-pha-test.phala.network"
    assert alice["storageMode"] == "s3"
    assert alice["bucket"] == "openclaw-alice-agent"
    assert alice["s3Endpoint"] == f"https://{ACCOUNT_ID}.r2.cloudflarestorage.com"
    assert alice["s3Prefix"] == "openclaw-data"
    assert alice["openclawId"] == derivation.openclaw_id(master_key_for("alice-agent"))
    assert alice["gatewayUrl"] == f"https://{app_id}-18789.{host}"
    assert alice["sshHost"] == f"{app_id}-1022.{host}"
    assert alice["inboundUrl"] == f"https://{app_id}-18789.{host}/v1/mux/inbound"
    assert alice["phalaDashboardUrl"].startswith("https://cloud.phala.com/dashboard/cvms/")
    staging = exports["tenants"]["staging-agent"]
    assert staging["storageMode"] == "local"
    assert staging["bucket"] is None
    assert staging["s3Endpoint"] is None
    secrets = exports["tenantSecrets"]["alice-agent"]
    token = derivation.gateway_token(master_key_for("alice-agent"))
    assert secrets["gatewayToken"] == token
    assert secrets["dashboardUrl"] == f"https://{app_id}-18789.{host}/#token={token}"
    assert secrets["s3AccessKeyId"] == fake_token_id("alice-agent-storage-token", ACCOUNT_ID)
    mux = exports["mux"]
    assert mux["baseUrl"] == f"https://{fake_app_id('openclaw-mux')}-18891.{host}"
    assert mux["healthUrl"] == mux["baseUrl"] + "/health"
    # muxChannels of Pulumi.prod.yaml, so `ops pair` can refuse the others.
    assert mux["channels"] == ["telegram", "discord"]
    assert exports["muxSecrets"]["adminToken"] == derivation.mux_admin_token(MUX_MASTER_KEY)


def test_secret_outputs_are_secret_and_the_rest_are_not(prod_run: ProgramRun) -> None:
    exports = prod_run.exports
    assert is_secret(exports["tenantSecrets"])
    assert is_secret(exports["muxSecrets"])
    for name in ("tenants", "mux", "contractVersion"):
        assert not _contains_secret(exports[name]), name


# What each component registers as its outputs (a real engine writes them to state).
COMPONENT_OUTPUT_NAMES = {
    TENANT_TYPE: {"openclawId", "cvmId", "gatewayUrl", "sshHost"},
    STORAGE_TYPE: {"bucketName", "s3Endpoint", "s3Prefix", "s3AccessKeyId", "s3SecretAccessKey"},
    CVM_TYPE: {"cvmId", "appId", "status", "gatewayBaseDomain", "composeHash"},
    MUX_TYPE: {"cvmId", "appId", "baseUrl", "healthUrl"},
}
SECRET_COMPONENT_OUTPUTS = {STORAGE_TYPE: {"s3AccessKeyId", "s3SecretAccessKey"}}


def test_component_outputs_are_secret_exactly_where_they_hold_secrets(
    prod_run: ProgramRun,
) -> None:
    components = [r for r in prod_run.registrations if r.type in COMPONENT_OUTPUT_NAMES]
    assert {r.type for r in components} == set(COMPONENT_OUTPUT_NAMES)
    for component in components:
        outputs = prod_run.component_outputs[component.urn]
        assert set(outputs) == COMPONENT_OUTPUT_NAMES[component.type], component.name
        secret_names = SECRET_COMPONENT_OUTPUTS.get(component.type, set())
        for name, value in outputs.items():
            assert is_secret(value) == (name in secret_names), (component.name, name)


def _contains_secret(value: Any) -> bool:
    if is_secret(value):
        return True
    if isinstance(value, dict):
        return any(_contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secret(v) for v in value)
    return False


# --------------------------------------------------------------------------- leaks


def _plain_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string leaf that is not inside a secret wrapper."""
    if is_secret(value):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _plain_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _plain_strings(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def _decoded_views(text: str) -> list[str]:
    views = [text]
    if re.fullmatch(r"[A-Za-z0-9+/=_-]{16,}", text):
        with contextlib.suppress(binascii.Error, ValueError):
            views.append(base64.b64decode(text + "=" * (-len(text) % 4)).decode("utf-8", "replace"))
    return views


def _secret_values(config: dict[str, Any], run: ProgramRun) -> set[str]:
    values = {REDPILL_KEY, MUX_MASTER_KEY, TELEGRAM_TOKEN, DISCORD_TOKEN}
    mux_keys = derivation.derive_mux_keys(MUX_MASTER_KEY)
    values |= {mux_keys.register_key, mux_keys.admin_token}
    values |= set(mux_keys.jwt_private_key_pem.splitlines()[1:-1])
    values.add(mux_jwt_key.env_value(mux_keys.jwt_private_key_pem))  # its one-line form
    for tenant in config["tenants"]:
        key = master_key_for(tenant["name"])
        keys = derivation.derive_tenant_keys(key)
        values |= {key, keys.gateway_token, keys.rclone_crypt_password, keys.rclone_crypt_salt}
    for token in run.of_type(TOKEN_TYPE):
        value = fake_token_value(token.name, token.plain_inputs["accountId"])
        values |= {value, hashlib.sha256(value.encode()).hexdigest()}
    return values


@pytest.mark.parametrize("variant", ["prod", "all_local", "all_s3"])
def test_no_secret_appears_in_any_plain_input_or_output(variant: str) -> None:
    config, secret_keys = {
        "prod": prod_config,
        "all_local": lambda: all_local(3),
        "all_s3": lambda: all_s3(3),
    }[variant]()
    run = run_program(config, secret_keys)
    secrets = _secret_values(config, run)
    places = [
        (f"{r.name}{path}", text)
        for r in run.registrations
        for path, text in _plain_strings(r.inputs)
    ]
    places += [(f"export{path}", text) for path, text in _plain_strings(run.exports)]
    # Component outputs reach the state file as well (see plan/evaluate.py).
    places += [
        (f"{urn.rsplit('::', 1)[-1]} outputs{path}", text)
        for urn, outputs in run.component_outputs.items()
        for path, text in _plain_strings(outputs)
    ]
    assert places, "nothing was scanned"
    assert any(where.endswith(" outputs.cvmId") for where, _ in places), "no component outputs"
    leaks = [
        (where, secret[:6])
        for where, text in places
        for view in _decoded_views(text)
        for secret in secrets
        if secret in view
    ]
    assert leaks == []


# --------------------------------------------------------------------------- variants


def test_all_local_stack_needs_no_cloudflare_at_all() -> None:
    config, secret_keys = all_local(3)
    config["cloudflareAccountId"] = ""
    run = run_program(config, secret_keys)
    assert run.of_type(BUCKET_TYPE) == []
    assert run.of_type(TOKEN_TYPE) == []
    assert run.calls == []
    assert len(run.deploy_commands) == 3


def test_all_s3_stack_has_a_bucket_and_token_per_tenant() -> None:
    config, secret_keys = all_s3(4)
    run = run_program(config, secret_keys)
    assert len(run.of_type(BUCKET_TYPE)) == 4
    assert len(run.of_type(TOKEN_TYPE)) == 4
    assert all(r.protect is False for r in run.deploy_commands)
    assert run.guards == []  # s3 state survives the CVM: nothing to guard
    assert "mux" not in run.exports  # a null stack output is not exported at all


def test_many_tenants_each_get_their_own_resources() -> None:
    config, secret_keys = many_tenants(60)
    run = run_program(config, secret_keys)
    assert len(run.of_type(TENANT_TYPE)) == 60
    assert len(run.of_type(BUCKET_TYPE)) == 48
    assert len(run.deploy_commands) == 61
    openclaw_ids = {t["openclawId"] for t in run.plain_exports["tenants"].values()}
    assert len(openclaw_ids) == 60


def test_preview_evaluates_without_deploy_outputs() -> None:
    config, secret_keys = prod_config()
    run = run_program(config, secret_keys, preview=True)
    assert len(run.deploy_commands) == 4


# --------------------------------------------------------------------------- bad config


def test_bad_config_fails_the_preview_with_a_clean_message() -> None:
    config, secret_keys = prod_config()
    config["tenants"][0]["bukket"] = "x"
    config["tenantSecrets"]["alice-agent"]["masterKey"] = "too-short"
    with pytest.raises(pulumi.RunError) as info:
        run_program(config, secret_keys, preview=True)
    message = str(info.value)
    assert "openclaw-phala:tenants[0].bukket (tenant alice-agent): unknown tenant field" in message
    assert "openclaw-phala:tenantSecrets.alice-agent.masterKey: is too short" in message
    assert "too-short" not in message
    assert "Traceback" not in message


# --------------------------------------------------------------------------- determinism


def test_same_config_gives_identical_inputs_from_any_directory(tmp_path: Path) -> None:
    config, secret_keys = prod_config()
    first_dir, second_dir = tmp_path / "one", tmp_path / "elsewhere" / "two"
    first_dir.mkdir()
    second_dir.mkdir(parents=True)
    first = run_program(config, secret_keys, cwd=first_dir)
    second = run_program(config, secret_keys, cwd=second_dir)

    def snapshot(run: ProgramRun) -> list[tuple[str, str]]:
        return sorted(
            (r.urn, json.dumps(r.plain_inputs, sort_keys=True)) for r in run.registrations
        )

    assert snapshot(first) == snapshot(second)
    for _, inputs in snapshot(first):
        assert str(tmp_path) not in inputs
        assert "/work/" not in inputs and "/home/" not in inputs.replace("/home/root/.ssh", "")


# --------------------------------------------------------------------------- key changes


def _deployed_with(config: dict, **overrides: str) -> dict:
    """Stack outputs as a deployment with these keys (fingerprints) would have left them."""
    tenants = {
        name: {"keyFingerprint": key_fingerprint(secrets["masterKey"])}
        for name, secrets in config["tenantSecrets"].items()
    }
    for name, key in overrides.items():
        tenants[name.replace("_", "-")] = {"keyFingerprint": key_fingerprint(key)}
    return {"tenants": tenants}


def test_a_redeploy_with_the_same_keys_passes_the_key_guard() -> None:
    config, secret_keys = prod_config()
    deployed = _deployed_with(config)
    deployed["mux"] = {
        "registerKeyFingerprint": key_fingerprint(derive_mux_keys(MUX_MASTER_KEY).register_key)
    }
    run = run_program(config, secret_keys, preview=True, deployed_outputs=deployed)
    exported = run.plain_exports["tenants"]["alice-agent"]["keyFingerprint"]
    assert exported == deployed["tenants"]["alice-agent"]["keyFingerprint"]
    assert not is_secret(run.exports["tenants"]["alice-agent"]["keyFingerprint"])


def test_a_changed_master_key_of_a_running_tenant_fails_the_preview() -> None:
    config, secret_keys = prod_config()
    deployed = _deployed_with(config, bob_agent="the-key-bob-runs-with-0123456789abcdef")
    with pytest.raises(pulumi.RunError) as info:
        run_program(config, secret_keys, preview=True, deployed_outputs=deployed)
    message = str(info.value)
    assert message.startswith("openclaw-phala:tenantSecrets.bob-agent.masterKey (tenant bob-agent)")
    assert "R2 unreadable" in message and "openclawId" in message
    assert "tenants[1].allowKeyChange: true" in message
    assert config["tenantSecrets"]["bob-agent"]["masterKey"] not in message


def test_allow_key_change_lets_the_new_master_key_through() -> None:
    config, secret_keys = prod_config()
    deployed = _deployed_with(config, bob_agent="the-key-bob-runs-with-0123456789abcdef")
    config["tenants"][1]["allowKeyChange"] = True
    run_program(config, secret_keys, preview=True, deployed_outputs=deployed)


def test_a_changed_mux_register_key_fails_the_preview_naming_mux_allow_key_change() -> None:
    config, secret_keys = prod_config()
    deployed = _deployed_with(config)
    deployed["mux"] = {"registerKeyFingerprint": key_fingerprint("the-old-register-key")}
    with pytest.raises(pulumi.RunError) as info:
        run_program(config, secret_keys, preview=True, deployed_outputs=deployed)
    assert "openclaw-phala:muxMasterKey (mux openclaw-mux)" in str(info.value)
    assert "muxAllowKeyChange: true" in str(info.value)
    config["muxAllowKeyChange"] = True
    run_program(config, secret_keys, preview=True, deployed_outputs=deployed)

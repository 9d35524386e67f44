"""Explicit mux secrets win over the ones derived from muxMasterKey (mock runtime).

The README's migration path keeps a running mux's own register key and admin token
while adding muxMasterKey. Tenants receive the register key in their bootstrap config
on first boot only, so if a derived key won, every running tenant would drop off the mux.
An explicit `muxJwtPrivateKey` likewise wins over the JWT signing key derived from
muxMasterKey; either reaches the mux as one base64 line (components/mux_jwt_key.py).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pulumi
import pytest

from components import derivation, mux_jwt_key
from components.key_change import key_fingerprint
from driver import protocol
from plan.evaluate import ProgramRun, is_secret, run_program, unwrap
from tests.support.stack_configs import MUX_MASTER_KEY, prod_config

EXPLICIT = {
    "muxRegisterKey": "todays-register-key-kept-from-the-old-setup-0001",
    "muxAdminToken": "todays-admin-token-kept-from-the-old-setup-0002",
}
MUX_ENV_NAME = {
    "muxRegisterKey": "MUX_REGISTER_KEY",
    "muxAdminToken": "MUX_ADMIN_TOKEN",
}
DERIVED = derivation.derive_mux_keys(MUX_MASTER_KEY)
DERIVED_VALUE = {
    "muxRegisterKey": DERIVED.register_key,
    "muxAdminToken": DERIVED.admin_token,
}
TENANTS_ON_THE_MUX = ("alice-agent", "bob-agent", "staging-agent")


def run_with_explicit(*keys: str) -> ProgramRun:
    config, secret_keys = prod_config()
    assert config["muxMasterKey"] == MUX_MASTER_KEY  # the derived keys are there to lose to
    for key in keys:
        config[key] = EXPLICIT[key]
        secret_keys.append(key)
    return run_program(config, secret_keys)


def mux_env(run: ProgramRun) -> dict[str, Any]:
    return run.named("openclaw-mux-deploy").inputs["environment"]


def bootstrap_register_key(run: ProgramRun, tenant: str) -> str:
    env = unwrap(run.named(f"{tenant}-deploy").inputs["environment"])
    encoded = env[protocol.env_value_var("OPENCLAW_CONFIG_B64")]
    return json.loads(base64.b64decode(encoded))["gateway"]["http"]["endpoints"]["mux"][
        "registerKey"
    ]


@pytest.mark.parametrize("key", sorted(EXPLICIT))
def test_an_explicit_mux_secret_beats_the_derived_one_in_the_mux_env(key: str) -> None:
    env = mux_env(run_with_explicit(key))
    for name, env_name in MUX_ENV_NAME.items():
        value = env[protocol.env_value_var(env_name)]
        assert is_secret(value), env_name
        expected = EXPLICIT[name] if name == key else DERIVED_VALUE[name]
        assert unwrap(value) == expected, env_name


def test_an_explicit_register_key_is_what_every_tenant_is_bootstrapped_with() -> None:
    run = run_with_explicit("muxRegisterKey")
    for tenant in TENANTS_ON_THE_MUX:
        assert bootstrap_register_key(run, tenant) == EXPLICIT["muxRegisterKey"], tenant
    # The key guard and the mux's secret outputs follow the key actually in use.
    exports = run.plain_exports
    assert exports["muxSecrets"]["registerKey"] == EXPLICIT["muxRegisterKey"]
    assert exports["mux"]["registerKeyFingerprint"] == key_fingerprint(EXPLICIT["muxRegisterKey"])


def test_an_explicit_admin_token_is_exported_and_never_given_to_tenants() -> None:
    run = run_with_explicit("muxAdminToken")
    assert run.plain_exports["muxSecrets"]["adminToken"] == EXPLICIT["muxAdminToken"]
    for tenant in TENANTS_ON_THE_MUX:
        assert bootstrap_register_key(run, tenant) == DERIVED.register_key, tenant
        env = json.dumps(unwrap(run.named(f"{tenant}-deploy").inputs["environment"]))
        assert EXPLICIT["muxAdminToken"] not in env


def test_all_explicit_mux_secrets_together_leave_nothing_derived() -> None:
    run = run_with_explicit(*EXPLICIT)
    env = unwrap(mux_env(run))
    for name, env_name in MUX_ENV_NAME.items():
        assert env[protocol.env_value_var(env_name)] == EXPLICIT[name], env_name
    everything = json.dumps([unwrap(r.inputs) for r in run.registrations])
    everything += json.dumps(run.plain_exports)
    for derived in DERIVED_VALUE.values():
        assert derived not in everything


JWT_ENV_VAR = protocol.env_value_var(mux_jwt_key.ENV_NAME)


def test_the_derived_jwt_key_reaches_the_mux_as_one_secret_base64_line() -> None:
    env = mux_env(run_with_explicit(*EXPLICIT))
    assert is_secret(env[JWT_ENV_VAR])
    assert unwrap(env[JWT_ENV_VAR]) == mux_jwt_key.env_value(DERIVED.jwt_private_key_pem)
    assert base64.b64decode(unwrap(env[JWT_ENV_VAR])).decode() == DERIVED.jwt_private_key_pem


def test_an_explicit_jwt_key_beats_the_derived_one_and_sets_the_exported_key_id() -> None:
    config, secret_keys = prod_config()
    explicit = derivation.mux_jwt_private_key_pem("another-root-0123456789abcdef0123")
    # As an operator's file may hold it: CRLF line ends, a trailing blank line.
    config["muxJwtPrivateKey"] = explicit.replace("\n", "\r\n") + "\r\n"
    run = run_program(config, [*secret_keys, "muxJwtPrivateKey"])
    env = unwrap(mux_env(run))
    assert env[JWT_ENV_VAR] == mux_jwt_key.env_value(explicit)  # re-encoded, the same key
    assert run.plain_exports["mux"]["jwtKeyId"] == mux_jwt_key.key_id(explicit)
    assert mux_jwt_key.key_id(explicit) != mux_jwt_key.key_id(DERIVED.jwt_private_key_pem)


def test_an_explicit_jwt_key_the_mux_could_not_load_fails_the_run_naming_the_key() -> None:
    config, secret_keys = prod_config()
    config["muxJwtPrivateKey"] = (
        "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----"
    )
    with pytest.raises(pulumi.RunError, match="muxJwtPrivateKey: is not a PEM private key"):
        run_program(config, [*secret_keys, "muxJwtPrivateKey"])

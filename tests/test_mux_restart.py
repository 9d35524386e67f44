"""A mux restart keeps its JWT key id: the program (mock runtime) through to a running key.

Each test deploys with the real __main__.py, takes the compose and env the mux's deploy
Command hands the driver, and boots what the container would run
(tests/support/mux_container.py): dstack's writing and systemd's reading of the env,
compose's substitution, the real `/bin/sh` running compose/mux.yml's wrapper, and a
stand-in that loads the key with mux-server's own call under real Node and serves its
JWKS. The key id it serves is what every gateway caches.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components import mux_jwt_key
from components.derivation import derive_mux_keys, mux_jwt_private_key_pem
from driver.dstack_env import delivered_env
from plan.evaluate import ProgramRun, run_program, unwrap
from tests.support.mux_container import (
    ContainerSpec,
    boot_once,
    booted_mux,
    cvm_env_and_compose,
    gateway_jwks_client,
    mux_container,
)
from tests.support.stack_configs import MUX_IMAGE, MUX_MASTER_KEY, base_config, with_secrets

MUX = "openclaw-mux"
NEW_MUX_MASTER_KEY = "a-new-mux-master-key-0123456789abcdef0123456789"
EXPLICIT_JWT_PEM = mux_jwt_private_key_pem("an-operator-kept-jwt-key-root-0123456789abcdef")
EXPLICIT_REGISTER_AND_ADMIN = {
    "muxRegisterKey": "todays-register-key-kept-from-the-old-setup-0001",
    "muxAdminToken": "todays-admin-token-kept-from-the-old-setup-0002",
}


def mux_stack(**overrides: Any) -> tuple[dict[str, Any], list[str]]:
    config, secret_keys = with_secrets(
        base_config(
            tenants=[{"name": "alice-agent", "storage": "local"}],
            muxName=MUX,
            muxImage=MUX_IMAGE,
            muxChannels=["telegram"],
        )
    )
    for key, value in overrides.items():
        if value is None:
            config.pop(key, None)
            continue
        config[key] = value
        if key.startswith("mux") and key not in ("muxAllowKeyChange",):
            secret_keys.append(key)
    return config, sorted(set(secret_keys) & set(config))


def deploy(config: dict[str, Any], secret_keys: list[str], last: ProgramRun | None = None) -> Any:
    """A `pulumi up` of the program; `last` is the deployment it follows."""
    return run_program(config, secret_keys, deployed_outputs=last.plain_exports if last else None)


def container(run: ProgramRun) -> ContainerSpec:
    env, compose = cvm_env_and_compose(unwrap(run.named(f"{MUX}-deploy").inputs["environment"]))
    return mux_container(compose, env)


def cvm_env(run: ProgramRun) -> dict[str, str]:
    return cvm_env_and_compose(unwrap(run.named(f"{MUX}-deploy").inputs["environment"]))[0]


def public_jwk_x(pem: str) -> str:
    """The `x` of the key's public JWK (RFC 8037): its raw public key, base64url."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(pem.encode(), None)
    raw = key.public_key().public_bytes_raw()  # type: ignore[union-attr]
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_the_mux_process_gets_the_derived_pem_through_dstack_compose_and_sh(
    tmp_path: Path,
) -> None:
    run = deploy(*mux_stack())
    pem = derive_mux_keys(MUX_MASTER_KEY).jwt_private_key_pem
    one_line = cvm_env(run)[mux_jwt_key.ENV_NAME]
    assert "\n" not in one_line
    assert delivered_env({mux_jwt_key.ENV_NAME: one_line}) == {mux_jwt_key.ENV_NAME: one_line}
    spec = container(run)
    assert spec.environment[mux_jwt_key.ENV_NAME] == one_line

    boot = boot_once(spec, tmp_path)

    # Exactly the PEM, less its final line break (the shell's $(...) drops it; the mux
    # trims anyway), and the one-line form is gone from the process's environment.
    handed_over = pem.removesuffix("\n")
    assert boot.report["keyFrom"] == "MUX_JWT_PRIVATE_KEY"
    assert boot.report["keyLength"] == len(handed_over)
    assert boot.report["keySha256"] == hashlib.sha256(handed_over.encode()).hexdigest()
    assert boot.report["oneLineFormLeftInEnv"] is False
    (jwk,) = boot.report["jwks"]["keys"]
    assert jwk == {
        "crv": "Ed25519",
        "x": public_jwk_x(pem),
        "kty": "OKP",
        "kid": mux_jwt_key.key_id(pem),
        "use": "sig",
        "alg": "EdDSA",
    }
    assert boot.kid == run.plain_exports["mux"]["jwtKeyId"]


def test_the_key_id_is_the_same_across_two_boots_and_a_redeploy_with_the_same_master_key(
    tmp_path: Path,
) -> None:
    config, secret_keys = mux_stack()
    first = deploy(config, secret_keys)
    boots = [boot_once(container(first), tmp_path) for _ in range(2)]
    redeploy = deploy(config, secret_keys, last=first)
    boots.append(boot_once(container(redeploy), tmp_path))

    assert len({boot.kid for boot in boots}) == 1
    assert all(boot.report["jwks"] == boots[0].report["jwks"] for boot in boots)
    assert redeploy.plain_exports["mux"]["jwtKeyId"] == boots[0].kid


def test_a_new_mux_master_key_is_refused_naming_both_keys_until_allowed_then_the_id_changes(
    tmp_path: Path,
) -> None:
    config, secret_keys = mux_stack()
    first = deploy(config, secret_keys)
    changed = {**config, "muxMasterKey": NEW_MUX_MASTER_KEY}

    with pytest.raises(pulumi.RunError) as refused:
        deploy(changed, secret_keys, last=first)
    message = str(refused.value)
    assert f"openclaw-phala:muxMasterKey (mux {MUX}): differs from the key" in message
    assert f"openclaw-phala:muxMasterKey (mux {MUX}, JWT signing key): differs" in message
    assert "5-minute cooldown" in message
    assert message.count("set muxAllowKeyChange: true") == 2
    assert NEW_MUX_MASTER_KEY not in message and MUX_MASTER_KEY not in message

    allowed = deploy({**changed, "muxAllowKeyChange": True}, secret_keys, last=first)
    before = boot_once(container(first), tmp_path)
    after = boot_once(container(allowed), tmp_path)
    assert after.kid != before.kid
    assert after.kid == allowed.plain_exports["mux"]["jwtKeyId"]
    assert after.kid == mux_jwt_key.key_id(derive_mux_keys(NEW_MUX_MASTER_KEY).jwt_private_key_pem)


def test_an_explicit_jwt_key_is_served_and_a_new_one_is_refused_alone(tmp_path: Path) -> None:
    config, secret_keys = mux_stack(muxJwtPrivateKey=EXPLICIT_JWT_PEM)
    first = deploy(config, secret_keys)
    assert boot_once(container(first), tmp_path).kid == mux_jwt_key.key_id(EXPLICIT_JWT_PEM)

    another = mux_jwt_private_key_pem("yet-another-jwt-key-root-0123456789abcdef")
    with pytest.raises(pulumi.RunError) as refused:
        deploy({**config, "muxJwtPrivateKey": another}, secret_keys, last=first)
    message = str(refused.value)
    assert message.startswith(
        f"openclaw-phala:muxJwtPrivateKey (mux {MUX}, JWT signing key): differs"
    )
    assert "(mux openclaw-mux):" not in message  # the register key did not change
    assert "BEGIN PRIVATE KEY" not in message


def test_dropping_the_stable_key_of_a_running_mux_is_refused_until_allowed() -> None:
    config, secret_keys = mux_stack(**EXPLICIT_REGISTER_AND_ADMIN)
    first = deploy(config, secret_keys)
    without_root, keys = mux_stack(**EXPLICIT_REGISTER_AND_ADMIN, muxMasterKey=None)

    with pytest.raises(pulumi.RunError, match=r"\(mux openclaw-mux, JWT signing key\): differs"):
        deploy(without_root, keys, last=first)
    allowed = deploy({**without_root, "muxAllowKeyChange": True}, keys, last=first)
    assert allowed.plain_exports["mux"]["jwtKeyId"] is None


def test_without_a_stable_key_each_boot_serves_a_new_key_id_and_the_run_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Today's mux migrated with its own register key and admin token, no muxMasterKey.
    config, secret_keys = mux_stack(**EXPLICIT_REGISTER_AND_ADMIN, muxMasterKey=None)
    with caplog.at_level(logging.WARNING):
        run = deploy(config, secret_keys)
    assert f"mux {MUX} has no stable JWT signing key" in caplog.text
    assert mux_jwt_key.ENV_NAME not in cvm_env(run)
    assert run.plain_exports["mux"]["jwtKeyId"] is None

    boots = [boot_once(container(run), tmp_path) for _ in range(2)]
    assert [boot.report["keyFrom"] for boot in boots] == ["generated", "generated"]
    assert boots[0].kid != boots[1].kid  # what every restart costs without a stable key


def test_compose_substitutes_nothing_into_the_command_so_no_secret_lands_in_argv() -> None:
    run = deploy(*mux_stack())
    env, compose = cvm_env_and_compose(unwrap(run.named(f"{MUX}-deploy").inputs["environment"]))
    template = yaml.safe_load(compose)["services"]["mux-server"]["command"]
    command = mux_container(compose, env).command
    # Every `$` of the wrapper is written `$$`: compose only unescapes it.
    assert command == [item.replace("$$", "$") for item in template]
    assert all(value not in " ".join(command) for value in env.values() if len(value) > 8)


@pytest.mark.parametrize("stable", [True, False], ids=["stable key", "no stable key"])
def test_a_gateway_accepts_inbound_messages_right_after_a_restart_only_with_a_stable_key(
    tmp_path: Path, stable: bool
) -> None:
    # The gateway's own JWKS client (jose, as src/gateway/mux-jwt.ts uses it) caches the
    # JWKS of the mux's first boot; the mux restarts at the same address.
    overrides: dict[str, Any] = (
        {} if stable else {**EXPLICIT_REGISTER_AND_ADMIN, "muxMasterKey": None}
    )
    spec = container(deploy(*mux_stack(**overrides)))
    openclaw_id = "0" * 64
    with gateway_jwks_client() as gateway:
        with booted_mux(spec, tmp_path) as first:
            assert gateway.verify_inbound(first, openclaw_id) == {"ok": True}
        with booted_mux(spec, tmp_path, port=first.report["port"]) as second:
            after_restart = gateway.verify_inbound(second, openclaw_id)
    if stable:
        assert after_restart == {"ok": True}
    else:  # refused until the 5-minute cooldown lets the gateway fetch the new JWKS
        assert after_restart == {"ok": False, "code": "ERR_JWKS_NO_MATCHING_KEY"}


def test_the_wrapper_keeps_the_working_directory_and_the_main_process_that_gets_sigterm(
    tmp_path: Path,
) -> None:
    spec = container(deploy(*mux_stack()))
    with booted_mux(spec, tmp_path) as boot:
        # exec all the way: the process started for the container is the one serving.
        assert boot.report["pid"] == boot.process.pid
        assert Path(boot.report["cwd"]).resolve() == tmp_path.resolve()
    assert boot.stopped == [{"signal": "SIGTERM"}]
    assert boot.process.returncode == 0


def test_a_one_line_key_that_is_not_base64_starts_the_mux_with_its_own_key_and_says_so(
    tmp_path: Path,
) -> None:
    spec = container(deploy(*mux_stack()))
    damaged = "not*base64*at*all"
    spec.environment[mux_jwt_key.ENV_NAME] = damaged
    boot = boot_once(spec, tmp_path)
    assert boot.report["keyFrom"] == "generated"
    assert "MUX_JWT_PRIVATE_KEY_B64 is not base64; the mux makes its own JWT key" in boot.stderr
    assert damaged not in boot.stderr

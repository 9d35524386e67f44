"""A real OpenClaw gateway, started on 127.0.0.1 from the tenant's bootstrap config
(upstream's view of it: the fork-only keys removed), judges the derived gateway token,
the derived device identity and our deploy's health check.

One gateway serves the whole module (see the `gateway` fixture); it is stopped by its
process group id when the session ends.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from components import derivation
from components.openclaw_tenant import GATEWAY_HEALTH_URL_TEMPLATE
from driver import protocol
from driver.health import probe
from sandbox.gateway import device_identity
from tests.oracle.conftest import TenantRun
from tests.oracle.fork_schema import without_fork_only_keys
from tests.support.openclaw_oracle import Gateway, OracleState, free_port

WRONG_DEVICE_ID = "0" * 64

# Several tenants' keys, non-ASCII and surrounding space included: the image feeds the
# key string's UTF-8 bytes to HKDF as given.
MASTER_KEYS = (
    "dGVzdC1tYXN0ZXIta2V5LTMyLWJ5dGVzLWxvbmctISE=",
    "clé-maître-ünïcödé-🔑",
    "主密钥-テスト-열쇠",
    "  spaced key\twith tab  ",
)


def _tools_invoke(gateway: Gateway, token: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    status, _, _ = gateway.request("POST", "/tools/invoke", b"{}", headers)
    return status


# --------------------------------------------------------------------------- token


def test_derived_gateway_token_passes_authentication(
    gateway: Gateway, tenant_run: TenantRun
) -> None:
    # Past authentication, the empty body is refused as a bad request (400), not 401.
    assert tenant_run.gateway_token == derivation.gateway_token(tenant_run.master_key)
    assert _tools_invoke(gateway, tenant_run.gateway_token) == 400


@pytest.mark.parametrize("token", [None, "wrong-token", ""], ids=["none", "wrong", "empty"])
def test_a_wrong_or_missing_token_gets_401(
    gateway: Gateway, tenant_run: TenantRun, token: str | None
) -> None:
    assert token != tenant_run.gateway_token
    assert _tools_invoke(gateway, token) == 401


def test_another_tenants_token_gets_401(gateway: Gateway) -> None:
    assert _tools_invoke(gateway, derivation.gateway_token(MASTER_KEYS[1])) == 401


# --------------------------------------------------------------------------- health


def _local_health_url(gateway: Gateway) -> str:
    # The deploy's URL for a tenant, with the public host swapped for the local gateway.
    path = urlsplit(GATEWAY_HEALTH_URL_TEMPLATE).path
    return f"{gateway.base_url}{path}"


def test_deploy_health_check_passes_against_a_running_gateway(gateway: Gateway) -> None:
    healthy, detail = probe(_local_health_url(gateway), protocol.HEALTH_EXPECT_HTTP)
    assert healthy, detail
    # What answers is the gateway's Control UI page, without any token.
    status, headers, body = gateway.request("GET", urlsplit(GATEWAY_HEALTH_URL_TEMPLATE).path)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b"<openclaw-app" in body


def test_a_gateway_has_no_json_health_route_like_the_mux(gateway: Gateway) -> None:
    # Why the tenant check is "any HTTP answer on /" and not the mux's {"ok": true}.
    healthy, _ = probe(f"{gateway.base_url}/health", protocol.HEALTH_EXPECT_JSON_OK)
    assert not healthy


def test_deploy_health_check_fails_when_nothing_answers() -> None:
    healthy, _ = probe(f"http://127.0.0.1:{free_port()}/", protocol.HEALTH_EXPECT_HTTP)
    assert not healthy


# --------------------------------------------------------------------------- device identity


def _seed_device_json(state: OracleState, master_key: str) -> Path:
    # The device file the image writes from MASTER_KEY, with a wrong id: OpenClaw must
    # recompute the id from the key.
    identity = device_identity(master_key) | {"deviceId": WRONG_DEVICE_ID}
    path = state.state_dir / "identity" / "device.json"
    path.parent.mkdir(mode=0o700)
    path.write_text(json.dumps(identity))
    path.chmod(0o600)
    return path


def test_openclaw_recomputes_the_program_openclaw_id_from_the_derived_device_key(
    gateway: Gateway,
    gateway_state: OracleState,
    tenant_run: TenantRun,
    oracle_dir: Path,
    tmp_path: Path,
) -> None:
    """A CLI client per master key loads the seeded identity, fixes its deviceId and
    connects; the gateway checks deviceId = SHA-256(public key) and the signature, then
    pairs the device (a local client is paired silently)."""
    client_config = without_fork_only_keys(tenant_run.bootstrap_config)
    # The client reads the gateway token from this config; with bind "lan" it would
    # dial the machine's LAN address, so it dials loopback like the gateway listens.
    client_config["gateway"]["bind"] = "loopback"
    keys = {key: derivation.derive_tenant_keys(key) for key in MASTER_KEYS}
    keys[tenant_run.master_key] = derivation.derive_tenant_keys(tenant_run.master_key)
    assert keys[tenant_run.master_key].openclaw_id == tenant_run.openclaw_id
    for index, (master_key, derived) in enumerate(keys.items()):
        client = OracleState(oracle_dir, tmp_path / f"client-{index}")
        client.write_config(client_config)  # the gateway token comes from here
        device_json = _seed_device_json(client, master_key)
        result = client.run_cli(
            ["gateway", "call", "health", "--json"],
            extra_env={"OPENCLAW_GATEWAY_PORT": str(gateway.port)},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(device_json.read_text())["deviceId"] == derived.openclaw_id
        assert client.contacted() == []
    paired = json.loads((gateway_state.state_dir / "devices" / "paired.json").read_text())
    seen = {entry["deviceId"]: entry["publicKey"] for entry in paired.values()}
    for derived in keys.values():
        assert seen.get(derived.openclaw_id) == derived.device_public_key_b64url


# --------------------------------------------------------------------------- network


def test_the_gateway_contacts_no_address_but_loopback(
    gateway: Gateway, gateway_state: OracleState
) -> None:
    # Runs after the other tests of the module have driven the gateway.
    assert gateway_state.contacted() == []

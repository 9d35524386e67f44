"""One tenant's OpenClaw gateway on loopback, from exactly what the program gave it.

The CVM image decodes OPENCLAW_CONFIG_B64 into openclaw.json and seeds the device identity
derived from MASTER_KEY (identity/device.json, mode 0600); the gateway then serves the
Control UI, which takes the gateway token from the dashboard link's `#token=`. Here:
- the bootstrap config is the OPENCLAW_CONFIG_B64 the program handed the tenant's deploy
  driver (read from the engine's state, `pulumi stack export --show-secrets`, in memory),
  with the keys only the image's fork knows taken out (sandbox/fork_keys.py), since the
  gateway is the upstream npm release the fork is based on (`scripts/oracle`);
- the device identity is derived from the tenant's MASTER_KEY (from the encrypted stack
  config) as the image derives it, and its deviceId is checked against the tenant's
  `openclawId` output;
- DSTACK_APP_ID and DSTACK_GATEWAY_DOMAIN are the tenant's, as the image passes them;
- it runs as the oracle tests run it (sandbox/openclaw.py): offline switches, the network
  guard refusing anything beyond loopback, bound to 127.0.0.1.
Its state folder is in the sandbox folder, in memory.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives import serialization

from components import derivation
from driver import protocol
from sandbox.engine import PROJECT, PulumiWorkspace, shown
from sandbox.folder import write_private
from sandbox.fork_keys import without_fork_only_keys
from sandbox.openclaw import Gateway, OracleState

COMMAND_TYPE = "command:local:Command"


class GatewayError(RuntimeError):
    pass


def bootstrap_config(workspace: PulumiWorkspace, stack: str, tenant: str) -> dict[str, Any]:
    """The decoded OPENCLAW_CONFIG_B64 of the tenant's deploy, as the engine holds it."""
    exported = workspace.run("stack", "export", "--stack", stack, "--show-secrets")
    if exported.returncode != 0:
        raise GatewayError(f"pulumi stack export failed: {exported.stderr.strip()[-300:]}")
    resources = json.loads(exported.stdout)["deployment"].get("resources", [])
    for resource in resources:
        if resource.get("type") == COMMAND_TYPE and resource["urn"].endswith(f"::{tenant}-deploy"):
            environment = shown(resource.get("inputs", {}).get("environment", {}))
            encoded = environment.get(protocol.env_value_var("OPENCLAW_CONFIG_B64"))
            if not isinstance(encoded, str):
                raise GatewayError(f"tenant {tenant}'s deploy has no OPENCLAW_CONFIG_B64")
            decoded: dict[str, Any] = json.loads(base64.b64decode(encoded))
            return decoded
    raise GatewayError(f"no deploy of tenant {tenant} in the stack's state")


def master_key(workspace: PulumiWorkspace, stack: str, tenant: str) -> str:
    """The tenant's MASTER_KEY from the stack's encrypted config (read through a pipe)."""
    result = workspace.run(
        "config", "get", "--path", "--stack", stack, f"{PROJECT}:tenantSecrets.{tenant}.masterKey"
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise GatewayError(f"cannot read tenant {tenant}'s masterKey from the stack config")
    return result.stdout.rstrip("\n")


def device_identity(key: str) -> dict[str, Any]:
    """identity/device.json as the image writes it from MASTER_KEY."""
    private_key = derivation.device_private_key(key)
    return {
        "version": 1,
        "deviceId": derivation.derive_tenant_keys(key).openclaw_id,
        "publicKeyPem": private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
        "privateKeyPem": private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "createdAtMs": 0,
    }


def local_dashboard_link(dashboard_url: str, port: int) -> str:
    """The tenant's dashboard URL (`https://<app>-18789.<domain>/#token=...`), pointing at
    the loopback gateway instead: same path and fragment."""
    parts = urlsplit(dashboard_url)
    return urlunsplit(("http", f"127.0.0.1:{port}", parts.path or "/", parts.query, parts.fragment))


def start_tenant_gateway(
    oracle_dir: Path,
    root: Path,
    *,
    config: dict[str, Any],
    key: str,
    tenant_outputs: dict[str, Any],
    gateway_token: str,
    port: int,
) -> tuple[Any, Gateway]:
    """Write the tenant's config and device identity into `root` and start its gateway."""
    identity = device_identity(key)
    if identity["deviceId"] != tenant_outputs.get("openclawId"):
        raise GatewayError("the derived device id differs from the tenant's openclawId output")
    if config.get("gateway", {}).get("auth", {}).get("token") != gateway_token:
        raise GatewayError(
            "the bootstrap config's gateway token differs from the gatewayToken output"
        )
    state = OracleState(
        oracle_dir,
        root,
        dstack_env={
            "DSTACK_APP_ID": str(tenant_outputs["appId"]),
            "DSTACK_GATEWAY_DOMAIN": str(tenant_outputs["gatewayBaseDomain"]),
        },
    )
    state.write_config(without_fork_only_keys(config))
    identity_dir = state.state_dir / "identity"
    identity_dir.mkdir(mode=0o700, exist_ok=True)
    write_private(identity_dir / "device.json", json.dumps(identity))
    return state.start_gateway(port)

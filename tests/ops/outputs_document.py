"""Builds stack-output documents (contract v1) for the ops tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

BASE_DOMAIN = "dstack-pha-prod9.phala.network"
# openclawId of the facts' test MASTER_KEY (section 1.5).
ALICE_OPENCLAW_ID = "4625d30b813b47d377443c0b8862053ea67ef055a612ace30de1b418f9dab85c"
CAROL_OPENCLAW_ID = "c" * 64
MUX_ADMIN_TOKEN = "mux-admin-token-0123456789abcdefghijklmnopq"
MUX_REGISTER_KEY = "mux-register-key-0123456789abcdefghijklmno"
ALICE_S3_ACCESS_KEY_ID = "AKIAALICEEXAMPLE0001"
ALICE_S3_SECRET_ACCESS_KEY = "alice-s3-secret-access-key-9876543210zyxw"


def _tenant(name: str, app_id: str, openclaw_id: str, *, s3: bool) -> dict[str, Any]:
    gateway = f"https://{app_id}-18789.{BASE_DOMAIN}"
    return {
        "name": name,
        "storageMode": "s3" if s3 else "local",
        "bucket": "openclaw-state" if s3 else None,
        "s3Endpoint": "https://0123456789abcdef.r2.cloudflarestorage.com" if s3 else None,
        "s3Region": "auto" if s3 else None,
        "s3Provider": "Cloudflare" if s3 else None,
        "s3Prefix": f"tenants/{name}" if s3 else None,
        "openclawId": openclaw_id,
        "cvmId": f"cvm-{name}-uuid",
        "appId": app_id,
        "gatewayBaseDomain": BASE_DOMAIN,
        "composeHash": "c" * 64,
        "gatewayUrl": gateway,
        "sshHost": f"{app_id}-1022.{BASE_DOMAIN}",
        "inboundUrl": f"{gateway}/v1/mux/inbound",
        "phalaDashboardUrl": f"https://cloud.phala.com/dashboard/cvms/cvm-{name}-uuid",
    }


def make_outputs(*, mux_base_url: str | None = None) -> dict[str, Any]:
    """A valid v1 document: 'alice' on S3, 'carol' on local storage, plus mux."""
    alice_app = "43069de20638d656a2d0e49fb074bee1049bc90e"
    carol_app = "a" * 40
    mux_app = "b" * 40
    return {
        "contractVersion": 1,
        "tenants": {
            "alice": _tenant("alice", alice_app, ALICE_OPENCLAW_ID, s3=True),
            "carol": _tenant("carol", carol_app, CAROL_OPENCLAW_ID, s3=False),
        },
        "tenantSecrets": {
            "alice": {
                "gatewayToken": "HNi1Q97Dx8nLzMZLLpFFHivnnRfVGTO5",
                "dashboardUrl": f"https://{alice_app}-18789.{BASE_DOMAIN}/#token=HNi1Q97Dx8nLzMZLLpFFHivnnRfVGTO5",
                "s3AccessKeyId": ALICE_S3_ACCESS_KEY_ID,
                "s3SecretAccessKey": ALICE_S3_SECRET_ACCESS_KEY,
            },
            "carol": {
                "gatewayToken": "carol-gateway-token-0123456789ab",
                "dashboardUrl": f"https://{carol_app}-18789.{BASE_DOMAIN}/#token=carol",
                "s3AccessKeyId": None,
                "s3SecretAccessKey": None,
            },
        },
        "mux": {
            "name": "mux",
            "cvmId": "cvm-mux-uuid",
            "appId": mux_app,
            "gatewayBaseDomain": BASE_DOMAIN,
            "composeHash": "d" * 64,
            "baseUrl": mux_base_url or f"https://{mux_app}-18891.{BASE_DOMAIN}",
            "healthUrl": f"{mux_base_url or f'https://{mux_app}-18891.{BASE_DOMAIN}'}/health",
            "phalaDashboardUrl": "https://cloud.phala.com/dashboard/cvms/cvm-mux-uuid",
            "channels": ["telegram", "discord", "whatsapp"],
        },
        "muxSecrets": {"registerKey": MUX_REGISTER_KEY, "adminToken": MUX_ADMIN_TOKEN},
    }


def write_outputs(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


def with_changes(document: dict[str, Any], *changes: tuple[tuple[str, ...], Any]) -> dict[str, Any]:
    """Deep copy of ``document`` with each (key path, value) set; value DELETE removes."""
    changed = copy.deepcopy(document)
    for key_path, value in changes:
        parent = changed
        for key in key_path[:-1]:
            parent = parent[key]
        if value is DELETE:
            del parent[key_path[-1]]
        else:
            parent[key_path[-1]] = value
    return changed


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


DELETE: Any = _Delete()

"""Public URLs and hosts of CVMs behind the Phala gateway.

Phala publishes each exposed container port as https://<app_id>-<port>.<base_domain>,
where base_domain is the gateway's full domain (e.g. dstack-pha-prod9.phala.network).
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

GATEWAY_PORT: Final = 18789  # OpenClaw gateway and dashboard
SSH_PORT: Final = 1022  # sshd in the OpenClaw container (22 is the CVM host's)
MUX_PORT: Final = 18891
MUX_INBOUND_PATH: Final = "/v1/mux/inbound"
PHALA_DASHBOARD: Final = "https://cloud.phala.com/dashboard/cvms"


def public_host(app_id: str, port: int, base_domain: str) -> str:
    return f"{app_id}-{port}.{base_domain}"


def public_url(app_id: str, port: int, base_domain: str) -> str:
    return f"https://{public_host(app_id, port, base_domain)}"


def gateway_url(app_id: str, base_domain: str) -> str:
    return public_url(app_id, GATEWAY_PORT, base_domain)


def dashboard_url(app_id: str, base_domain: str, gateway_token: str) -> str:
    """The gateway dashboard, logged in by the token in the URL fragment (a secret).

    OpenClaw 2026.2.12's Control UI takes `token` from the query or the fragment, stores
    it and strips it from the address bar. The fragment never leaves the browser: no
    proxy, access log or Referer header sees the token, as they would a query string.
    """
    return f"{gateway_url(app_id, base_domain)}/#token={quote(gateway_token, safe='')}"


def ssh_host(app_id: str, base_domain: str) -> str:
    return public_host(app_id, SSH_PORT, base_domain)


def inbound_url(app_id: str, base_domain: str) -> str:
    """Where the mux delivers a tenant's inbound messages."""
    return f"{gateway_url(app_id, base_domain)}{MUX_INBOUND_PATH}"


def mux_base_url(app_id: str, base_domain: str) -> str:
    return public_url(app_id, MUX_PORT, base_domain)


def mux_health_url(app_id: str, base_domain: str) -> str:
    return f"{mux_base_url(app_id, base_domain)}/health"


def phala_dashboard_url(cvm_id: str) -> str:
    return f"{PHALA_DASHBOARD}/{cvm_id}"

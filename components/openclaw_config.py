"""The bootstrap openclaw.json a tenant CVM starts from when it joins a mux.

The image decodes OPENCLAW_CONFIG_B64 into /root/.openclaw/openclaw.json on
first boot only (when no config exists yet). The inbound URL keeps the image's
DSTACK_APP_ID / DSTACK_GATEWAY_DOMAIN placeholders, filled by OpenClaw's config
env substitution, so a tenant's config does not depend on its own app id.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Final

from components.mux_protocol import MUX_INBOUND_TIMEOUT_MS
from components.urls import GATEWAY_PORT, MUX_INBOUND_PATH

MUX_CHANNELS: Final = ("telegram", "discord", "whatsapp")
MUX_ACCOUNT_ID: Final = "mux"  # must equal the mux's MUX_OPENCLAW_ACCOUNT_ID
DENIED_NODE_COMMANDS: Final = (
    "camera.snap",
    "camera.clip",
    "screen.record",
    "calendar.add",
    "contacts.add",
    "reminders.add",
)
INBOUND_URL_TEMPLATE: Final = (
    f"https://${{DSTACK_APP_ID}}-{GATEWAY_PORT}.${{DSTACK_GATEWAY_DOMAIN}}{MUX_INBOUND_PATH}"
)


def tenant_config(gateway_token: str, mux_base_url: str, register_key: str) -> dict[str, Any]:
    return {
        "gateway": {
            "mode": "local",
            "bind": "lan",
            "port": GATEWAY_PORT,
            "auth": {"mode": "token", "token": gateway_token},
            "controlUi": {"dangerouslyDisableDeviceAuth": True},
            # Phone-style node commands make no sense for a CVM-hosted agent. The list
            # lives under `gateway.nodes` (OpenClaw rejects a top-level `nodes` key).
            "nodes": {"denyCommands": list(DENIED_NODE_COMMANDS)},
            "http": {
                "endpoints": {
                    "mux": {
                        "enabled": True,
                        "baseUrl": mux_base_url,
                        "registerKey": register_key,
                        "inboundUrl": INBOUND_URL_TEMPLATE,
                    }
                }
            },
        },
        "update": {"checkOnStart": False},  # images are updated by redeploying a new digest
        "messages": {"ackReactionScope": "group-mentions"},
        "channels": {
            channel: {
                "accounts": {
                    "default": {"enabled": False},
                    MUX_ACCOUNT_ID: {
                        "enabled": True,
                        "mux": {"enabled": True, "timeoutMs": MUX_INBOUND_TIMEOUT_MS},
                    },
                }
            }
            for channel in MUX_CHANNELS
        },
        "plugins": {"entries": {channel: {"enabled": True} for channel in MUX_CHANNELS}},
    }


def encode_config(config: dict[str, Any]) -> str:
    """Compact, key-sorted JSON in standard base64: the same config, the same bytes."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(text.encode()).decode()

from __future__ import annotations

import base64
import json

from components.openclaw_config import (
    DENIED_NODE_COMMANDS,
    INBOUND_URL_TEMPLATE,
    encode_config,
    tenant_config,
)


def test_config_enables_the_mux_endpoint_with_dstack_placeholders() -> None:
    config = tenant_config("tok", "https://mux.example", "reg")
    mux = config["gateway"]["http"]["endpoints"]["mux"]
    assert mux == {
        "enabled": True,
        "baseUrl": "https://mux.example",
        "registerKey": "reg",
        "inboundUrl": "https://${DSTACK_APP_ID}-18789.${DSTACK_GATEWAY_DOMAIN}/v1/mux/inbound",
    }
    assert mux["inboundUrl"] == INBOUND_URL_TEMPLATE
    assert config["gateway"]["auth"] == {"mode": "token", "token": "tok"}


def test_every_channel_gets_the_mux_account() -> None:
    config = tenant_config("tok", "https://mux.example", "reg")
    for channel in ("telegram", "discord", "whatsapp"):
        accounts = config["channels"][channel]["accounts"]
        assert accounts["mux"] == {"enabled": True, "mux": {"enabled": True, "timeoutMs": 30000}}
        assert accounts["default"] == {"enabled": False}


def test_encoding_is_canonical_json_in_standard_base64() -> None:
    # Canonical (sorted keys, no spaces) so equal configs give equal bytes; equality
    # across interpreters is pinned in tests/test_determinism.py.
    config = tenant_config("tök", "https://mux.example", "reg")
    text = base64.b64decode(encode_config(config), validate=True).decode("utf-8")
    assert json.loads(text) == config
    canonical = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert text == canonical.replace("\\u00f6", "ö")  # UTF-8, not \u escapes


def test_denied_node_commands_sit_under_gateway_nodes() -> None:
    # OpenClaw's schema has `gateway.nodes.denyCommands`; a top-level `nodes` key makes
    # the whole config invalid (tests/oracle/test_bootstrap_config.py).
    config = tenant_config("tok", "https://mux.example", "reg")
    assert "nodes" not in config
    assert config["gateway"]["nodes"] == {"denyCommands": list(DENIED_NODE_COMMANDS)}

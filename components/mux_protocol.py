"""Values the tenant gateways, the program and the ops CLI must agree on with mux-server.

Pure (no Pulumi import), so the operator CLI can read it without the program.
"""

from __future__ import annotations

from typing import Final

# How long mux waits for a tenant's inbound endpoint before giving up on a
# message. The bootstrap config registers each tenant with it, and `ops pair`
# sends it too: the pairing endpoint upserts the tenant's row, so any other
# value there would silently change the tenant's timeout until its gateway
# registers again (up to a day later).
MUX_INBOUND_TIMEOUT_MS: Final = 30000

# The chat channels mux-server can front (config_keys.MuxChannel has the same values).
MUX_CHANNEL_NAMES: Final = ("telegram", "discord", "whatsapp")

"""The demo stack `up` deploys: the committed example (Pulumi.prod.yaml: a mux serving
Telegram and Discord, and three tenants, two with state in R2 and one local), with every
secret generated fresh for this sandbox.

The secrets go into the stack file only through `pulumi config set --secret` (on stdin),
so they rest nowhere but encrypted in the stack file, under the sandbox's own passphrase.
"""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sandbox.engine import PROJECT, REPO_ROOT
from sandbox.services import PhalaTimings

DEMO_STACK = "sandbox"
EXAMPLE_STACK_FILE = REPO_ROOT / "Pulumi.prod.yaml"
# Realistic in kind, short in time: each CVM boots, each update stops and restarts the
# CVM, each delete takes a while, and the driver polls once a second, so a deploy shows
# its waits and restarts within a minute or two.
DEMO_TIMINGS = PhalaTimings(boot=3.0, update=4.0, delete=2.0)
DEMO_POLL_SECONDS = 1.0
_ALPHANUMERIC = string.ascii_letters + string.digits


def example_config(path: Path = EXAMPLE_STACK_FILE) -> dict[str, Any]:
    """The example stack file's config for this project, keys without the namespace."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    prefix = f"{PROJECT}:"
    return {
        key.removeprefix(prefix): value
        for key, value in (document.get("config") or {}).items()
        if key.startswith(prefix)
    }


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def fresh_secrets(config: Mapping[str, Any]) -> dict[str, str]:
    """Config path -> a new random value, for every secret the config needs."""
    values = {"redpillApiKey": "sk-sandbox-" + _random_text(40)}
    for tenant in config.get("tenants") or []:
        # As the README says to make one: 32 random bytes in base64.
        values[f"tenantSecrets.{tenant['name']}.masterKey"] = base64.b64encode(
            secrets.token_bytes(32)
        ).decode()
    if config.get("muxName"):
        values["muxMasterKey"] = base64.b64encode(secrets.token_bytes(32)).decode()
        channels = config.get("muxChannels") or []
        if "telegram" in channels:
            # Shaped as @BotFather's tokens are: <bot id>:<35 characters>.
            values["muxTelegramBotToken"] = f"{secrets.randbelow(10**9) + 10**9}:{_random_text(35)}"
        if "discord" in channels:
            values["muxDiscordBotToken"] = _random_text(72)
    return values


def gateway_tenant(config: Mapping[str, Any]) -> str:
    """The tenant whose gateway the sandbox runs: the first one."""
    return str((config.get("tenants") or [{}])[0]["name"])

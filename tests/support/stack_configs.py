"""Stack configs for tests: the committed prod example plus placeholder secrets, and variants."""

from __future__ import annotations

import hashlib
from typing import Any

from plan.evaluate import stack_file_config

IMAGE = "h4x3rotab/openclaw-cvm@sha256:" + "a" * 64
MUX_IMAGE = "h4x3rotab/openclaw-mux@sha256:" + "b" * 64
ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINhi0jlwRMlyDk84dxJhT4aEg5cS8yzB42YoIMM/tp/A test@ci"


def master_key_for(tenant: str) -> str:
    """A distinct, recognisable 44-character test MASTER_KEY per tenant."""
    return "mk-" + hashlib.sha256(f"master:{tenant}".encode()).hexdigest()[:41]


REDPILL_KEY = "rp-shared-redpill-key-0123456789abcdef"
MUX_MASTER_KEY = "mux-master-key-0123456789abcdef0123456789"
TELEGRAM_TOKEN = "123456:telegram-bot-token-AAAAAAAAAAAAAAAAAAAA"
DISCORD_TOKEN = "discord-bot-token-BBBBBBBBBBBBBBBBBBBBBBBBBBBB"


def with_secrets(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Add placeholder secrets for every tenant (and the mux, if any) to a config."""
    config = dict(config)
    tenants = config.get("tenants", [])
    config["tenantSecrets"] = {t["name"]: {"masterKey": master_key_for(t["name"])} for t in tenants}
    config.setdefault("redpillApiKey", REDPILL_KEY)
    secret_keys = ["tenantSecrets", "redpillApiKey"]
    if config.get("muxName"):
        config.setdefault("muxMasterKey", MUX_MASTER_KEY)
        secret_keys.append("muxMasterKey")
        channels = config.get("muxChannels", [])
        if "telegram" in channels:
            config.setdefault("muxTelegramBotToken", TELEGRAM_TOKEN)
            secret_keys.append("muxTelegramBotToken")
        if "discord" in channels:
            config.setdefault("muxDiscordBotToken", DISCORD_TOKEN)
            secret_keys.append("muxDiscordBotToken")
    return config, secret_keys


def prod_config() -> tuple[dict[str, Any], list[str]]:
    return with_secrets(stack_file_config("prod"))


def base_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "cloudflareAccountId": ACCOUNT_ID,
        "openclawImage": IMAGE,
        "phalaSshPublicKey": SSH_KEY,
    }
    config.update(overrides)
    return config


def all_local(count: int = 2) -> tuple[dict[str, Any], list[str]]:
    tenants = [{"name": f"local-agent-{i}", "storage": "local"} for i in range(count)]
    return with_secrets(base_config(tenants=tenants))


def all_s3(count: int = 2) -> tuple[dict[str, Any], list[str]]:
    tenants = [{"name": f"s3-agent-{i}", "storage": "s3"} for i in range(count)]
    return with_secrets(base_config(tenants=tenants))


def many_tenants(count: int, with_mux: bool = True) -> tuple[dict[str, Any], list[str]]:
    tenants = [
        {"name": f"tenant-{i:04d}", "storage": "local" if i % 5 == 4 else "s3"}
        for i in range(count)
    ]
    mux: dict[str, Any] = (
        {"muxName": "shared-mux", "muxImage": MUX_IMAGE, "muxChannels": ["telegram"]}
        if with_mux
        else {}
    )
    return with_secrets(base_config(tenants=tenants, **mux))

"""Stack config for an offline plan: the committed stack file, secrets replaced.

Encrypted values cannot be read without the stack's secrets provider, and
reviewers and fork PRs have no such access. Every secret the program needs is
replaced by a deterministic placeholder, so the plan shows structure (names,
modes, images, compose, env var names) and never a real secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from components.settings import SCALAR_KEYS, TENANT_SECRETS_KEY
from plan.evaluate import stack_file_config

PLACEHOLDER_MUX_BASE_DOMAIN = "placeholder.phala.network"


def placeholder(path: str) -> str:
    """A recognisable stand-in, long enough to pass every secret's validation."""
    return f"placeholder-{hashlib.sha256(path.encode()).hexdigest()[:40]}"


def _replace_secure(value: Any, path: str) -> Any:
    if isinstance(value, dict) and set(value) == {"secure"}:
        return placeholder(path)
    if isinstance(value, dict):
        return {k: _replace_secure(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_secure(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def offline_config(stack: str) -> tuple[dict[str, Any], list[str]]:
    """The stack file's config with placeholders for secrets, plus the secret key names."""
    return with_placeholders(stack_file_config(stack))


def with_placeholders(stack_config: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Replace every encrypted value, and add every secret the program requires."""
    config = {key: _replace_secure(value, key) for key, value in stack_config.items()}
    secret_keys = {key.name for key in SCALAR_KEYS if key.secret} | {TENANT_SECRETS_KEY}

    tenants = config.get("tenants") if isinstance(config.get("tenants"), list) else []
    tenant_secrets: dict[str, Any] = dict(config.get(TENANT_SECRETS_KEY) or {})
    for tenant in tenants:
        name = tenant.get("name") if isinstance(tenant, dict) else None
        if isinstance(name, str):
            entry = dict(tenant_secrets.get(name) or {})
            entry.setdefault("masterKey", placeholder(f"{TENANT_SECRETS_KEY}.{name}.masterKey"))
            tenant_secrets[name] = entry
    if tenant_secrets:
        config[TENANT_SECRETS_KEY] = tenant_secrets
    if tenants:
        config.setdefault("redpillApiKey", placeholder("redpillApiKey"))

    if config.get("muxName"):
        if not (config.get("muxRegisterKey") and config.get("muxAdminToken")):
            config.setdefault("muxMasterKey", placeholder("muxMasterKey"))
        channels = config.get("muxChannels") or []
        tokens = {"telegram": "muxTelegramBotToken", "discord": "muxDiscordBotToken"}
        for channel, key in tokens.items():
            if channel in channels:
                config.setdefault(key, placeholder(key))
    return config, sorted(key for key in secret_keys if key in config)


def placeholder_mux_stack(stack_name: str) -> Mapping[str, Any]:
    """What a referenced mux stack is assumed to export when planning offline."""
    return {
        "outputs": {
            "contractVersion": 1,
            "mux": {
                "name": "mux-from-" + stack_name.rsplit("/", 1)[-1],
                "baseUrl": f"https://mux-app-id-18891.{PLACEHOLDER_MUX_BASE_DOMAIN}",
            },
            "muxSecrets": {
                "registerKey": placeholder(f"{stack_name}.registerKey"),
                "adminToken": placeholder(f"{stack_name}.adminToken"),
            },
        },
        "secret": ["muxSecrets"],
    }

"""Stack config for an offline plan: the committed stack file, secrets replaced.

Encrypted values cannot be read without the stack's secrets provider, and
reviewers and fork PRs have no such access. Every secret the program needs is
replaced by a deterministic placeholder, so the plan shows structure (names,
modes, images, compose, env var names) and never a real secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from components.settings import TENANT_SECRETS_KEY, ConfigProblem, SettingsError
from plan.evaluate import read_stack_config
from plan.stack_file import Encrypted

PLACEHOLDER_MUX_BASE_DOMAIN = "placeholder.phala.network"


def placeholder(path: str) -> str:
    """A recognisable stand-in, long enough to pass every secret's validation."""
    return f"placeholder-{hashlib.sha256(path.encode()).hexdigest()[:40]}"


def _is_encrypted(value: Any) -> bool:
    """An encrypted leaf: read from a stack file, or written as the file spells it."""
    return isinstance(value, Encrypted) or (
        isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str)
    )


def _holds_encrypted(value: Any) -> bool:
    if isinstance(value, dict) and not _is_encrypted(value):
        return any(_holds_encrypted(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_encrypted(item) for item in value)
    return _is_encrypted(value)


def _replace_secure(value: Any, path: str) -> Any:
    if _is_encrypted(value):
        return placeholder(path)
    if isinstance(value, dict):
        return {k: _replace_secure(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_secure(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def offline_config(stack: str) -> tuple[dict[str, Any], list[str]]:
    """The stack file's config with placeholders for secrets, plus the secret key names."""
    return offline_config_of(*read_stack_config(stack))


def offline_config_of(
    stack_config: Mapping[str, Any], secret_keys: Iterable[str]
) -> tuple[dict[str, Any], list[str]]:
    """`offline_config` for config already read from a stack file (keys without namespace)."""
    check_secret_objects(stack_config)
    return with_placeholders(stack_config, secret_keys)


def check_secret_objects(stack_config: Mapping[str, Any]) -> None:
    """Every value inside tenantSecrets must be encrypted.

    Pulumi marks an object secret as a whole when any leaf is encrypted, so the
    program cannot tell a plaintext redpillApiKey beside an encrypted masterKey; the
    stack file can. (A tenantSecrets with no encrypted leaf at all is the program's
    to refuse, with its own message.)"""
    secrets = stack_config.get(TENANT_SECRETS_KEY)
    if not isinstance(secrets, dict) or not _holds_encrypted(secrets):
        return
    problems: list[ConfigProblem] = []

    def visit(value: Any, path: str) -> None:
        if _is_encrypted(value):
            return
        if isinstance(value, dict):
            for key, item in value.items():
                visit(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                visit(item, f"{path}[{index}]")
        else:
            problems.append(
                ConfigProblem(
                    path,
                    "holds a secret in plaintext; set it with: pulumi config set --secret "
                    f"--path '{path}' <value>",
                )
            )

    visit(secrets, TENANT_SECRETS_KEY)
    if problems:
        raise SettingsError(problems)


def with_placeholders(
    stack_config: Mapping[str, Any], secret_keys: Iterable[str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Replace every encrypted value, and add every secret the program requires.

    `secret_keys` are the keys the engine would mark secret (by default: those holding
    an encrypted value). A key the file sets in plaintext stays plaintext, so the
    program refuses it exactly as it does under `pulumi preview`; a key the file does
    not set at all is added as a secret placeholder."""
    if secret_keys is None:
        secret_keys = [key for key, value in stack_config.items() if _holds_encrypted(value)]
    secret = set(secret_keys)
    config = {key: _replace_secure(value, key) for key, value in stack_config.items()}

    def add_secret(key: str, value: Any) -> None:
        if key not in config:
            config[key] = value
            secret.add(key)

    tenants = config.get("tenants") if isinstance(config.get("tenants"), list) else []
    tenant_secrets = config.get(TENANT_SECRETS_KEY, {})
    if isinstance(tenant_secrets, dict):  # anything else is the program's to report
        tenant_secrets = dict(tenant_secrets)
        for tenant in tenants:
            name = tenant.get("name") if isinstance(tenant, dict) else None
            if not isinstance(name, str):
                continue
            entry = tenant_secrets.get(name, {})
            if isinstance(entry, dict):  # e.g. one encrypted value: the program says why
                entry = dict(entry)
                entry.setdefault("masterKey", placeholder(f"{TENANT_SECRETS_KEY}.{name}.masterKey"))
            tenant_secrets[name] = entry
        if tenant_secrets:
            if TENANT_SECRETS_KEY not in config:
                secret.add(TENANT_SECRETS_KEY)
            config[TENANT_SECRETS_KEY] = tenant_secrets
    if tenants:
        add_secret("redpillApiKey", placeholder("redpillApiKey"))

    if config.get("muxName"):
        if not (config.get("muxRegisterKey") and config.get("muxAdminToken")):
            add_secret("muxMasterKey", placeholder("muxMasterKey"))
        channels = config.get("muxChannels")
        channels = channels if isinstance(channels, list) else []
        tokens = {"telegram": "muxTelegramBotToken", "discord": "muxDiscordBotToken"}
        for channel, key in tokens.items():
            if channel in channels:
                add_secret(key, placeholder(key))
    return config, sorted(key for key in secret if key in config)


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

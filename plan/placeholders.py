"""Stack config for an offline plan: the committed stack file, secrets replaced.

Encrypted values cannot be read without the stack's secrets provider, and
reviewers and fork PRs have no such access. Every encrypted value is replaced by
a deterministic placeholder derived from its key path and its ciphertext (public,
and new whenever `pulumi config set --secret` stores a value), so the plan shows
structure and, through the placeholders, which secrets changed, never a secret.

A secret the stack file does not hold is not made up: the program's own settings
check names it and the plan fails as the preview would. Only on request
(`--stand-in-missing-secrets`, for the example stacks, which hold no secrets) does the
plan stand in for missing secrets, and then it lists each one as NOT SET.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from components import derivation
from components.config_keys import TENANT_SECRETS_KEY
from components.settings import ConfigProblem, SettingsError
from plan.evaluate import read_stack_config
from plan.stack_file import Encrypted

PLACEHOLDER_MUX_BASE_DOMAIN = "placeholder.phala.network"


# Starts every stand-in for a secret the stack file does not hold, so the plan can say so.
NOT_SET_MARK = "placeholder-not-set-"


def placeholder(path: str, ciphertext: str = "") -> str:
    """A recognisable stand-in, long enough to pass every secret's validation."""
    digest = hashlib.sha256(f"{path}\n{ciphertext}".encode()).hexdigest()
    return f"placeholder-{digest[:40]}"


def not_set_placeholder(path: str) -> str:
    digest = hashlib.sha256(f"{path}\nnot set".encode()).hexdigest()
    return f"{NOT_SET_MARK}{digest[:40]}"


def _ciphertext(value: Any) -> str | None:
    """An encrypted leaf's ciphertext (read from a stack file, or written as the file
    spells it), or None for any other value."""
    if isinstance(value, Encrypted):
        return value.ciphertext
    if isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str):
        return value["secure"]
    return None


def _is_encrypted(value: Any) -> bool:
    return _ciphertext(value) is not None


def _holds_encrypted(value: Any) -> bool:
    if isinstance(value, dict) and not _is_encrypted(value):
        return any(_holds_encrypted(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_encrypted(item) for item in value)
    return _is_encrypted(value)


# Secrets whose form the settings check, so their stand-in must have that form too.
JWT_KEY_SETTING = "muxJwtPrivateKey"


def _replace_secure(value: Any, path: str) -> Any:
    ciphertext = _ciphertext(value)
    if ciphertext is not None and path == JWT_KEY_SETTING:
        # An Ed25519 PEM (settings refuse anything else), new with every new ciphertext.
        return derivation.mux_jwt_private_key_pem(placeholder(path, ciphertext))
    if ciphertext is not None:
        return placeholder(path, ciphertext)
    if isinstance(value, dict):
        return {k: _replace_secure(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_secure(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


@dataclass(frozen=True)
class OfflineConfig:
    config: dict[str, Any]  # keys without the project namespace, secrets replaced
    secret_keys: list[str]  # the keys the engine would mark secret
    not_set: list[str]  # secrets the plan stood in for (only when asked to)


def offline_config(stack: str, *, stand_in_missing: bool = False) -> OfflineConfig:
    """The stack file's config, read as Pulumi reads it, with placeholders for its
    encrypted values."""
    return offline_config_of(*read_stack_config(stack), stand_in_missing=stand_in_missing)


def offline_config_of(
    stack_config: Mapping[str, Any],
    secret_keys: Iterable[str],
    *,
    stand_in_missing: bool = False,
) -> OfflineConfig:
    """`offline_config` for config already read from a stack file (keys without namespace)."""
    check_secret_objects(stack_config)
    return with_placeholders(stack_config, secret_keys, stand_in_missing=stand_in_missing)


def check_secret_objects(stack_config: Mapping[str, Any]) -> None:
    """SettingsError naming each problem only the stack file shows (`file_problems`)."""
    problems = file_problems(stack_config)
    if problems:
        raise SettingsError(problems)


def encrypted_leaves(stack_config: Mapping[str, Any]) -> dict[str, str]:
    """`--path` (`tenants[0].name`) -> ciphertext of every value stored encrypted."""
    found: dict[str, str] = {}

    def visit(value: Any, path: str) -> None:
        ciphertext = _ciphertext(value)
        if ciphertext is not None:
            found[path] = ciphertext
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                visit(item, f"{path}[{index}]")

    for key, value in stack_config.items():
        visit(value, key)
    return found


def file_problems(stack_config: Mapping[str, Any]) -> list[ConfigProblem]:
    """What only the stack file shows: `secure: ''` (no secrets provider can decrypt an
    empty ciphertext: `pulumi preview` fails with "bad value"), and a plaintext value
    inside tenantSecrets beside an encrypted one (Pulumi marks the object secret as a
    whole, so the program cannot tell them apart)."""
    empty = [
        ConfigProblem(
            path,
            "is `secure: ''`, an empty ciphertext that no secrets provider can decrypt; "
            f"set it again with: pulumi config set --secret --path '{path}' <value>",
        )
        for path, ciphertext in sorted(encrypted_leaves(stack_config).items())
        if not ciphertext.strip()
    ]
    return empty + _plaintext_secret_leaves(stack_config)


def _plaintext_secret_leaves(stack_config: Mapping[str, Any]) -> list[ConfigProblem]:
    """Every value inside tenantSecrets must be encrypted.

    Pulumi marks an object secret as a whole when any leaf is encrypted, so the
    program cannot tell a plaintext redpillApiKey beside an encrypted masterKey; the
    stack file can. (A tenantSecrets with no encrypted leaf at all is the program's
    to refuse, with its own message.)"""
    secrets = stack_config.get(TENANT_SECRETS_KEY)
    if not isinstance(secrets, dict) or not _holds_encrypted(secrets):
        return []
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
    return problems


def missing_secrets(config: Mapping[str, Any]) -> list[str]:
    """The secrets the program will require that the config does not hold.

    A tenantSecrets (or a tenant's entry) that is not an object is not filled in: the
    program names what is wrong with it."""
    missing: list[str] = []
    raw_tenants = config.get("tenants")
    tenants = raw_tenants if isinstance(raw_tenants, list) else []
    raw_secrets = config.get(TENANT_SECRETS_KEY, {})
    tenant_secrets = raw_secrets if isinstance(raw_secrets, dict) else None
    shared_redpill = bool(config.get("redpillApiKey"))
    for tenant in tenants:
        name = tenant.get("name") if isinstance(tenant, dict) else None
        if not isinstance(name, str):
            continue
        entry = tenant_secrets.get(name, {}) if tenant_secrets is not None else None
        if isinstance(entry, dict) and not entry.get("masterKey"):
            missing.append(f"{TENANT_SECRETS_KEY}.{name}.masterKey")
        if not shared_redpill and not (isinstance(entry, dict) and entry.get("redpillApiKey")):
            missing.append("redpillApiKey")
    if config.get("muxName"):
        if not config.get("muxMasterKey") and not (
            config.get("muxRegisterKey") and config.get("muxAdminToken")
        ):
            missing.append("muxMasterKey")
        channels = config.get("muxChannels")
        channels = channels if isinstance(channels, list) else []
        tokens = {"telegram": "muxTelegramBotToken", "discord": "muxDiscordBotToken"}
        missing += [
            key for channel, key in tokens.items() if channel in channels and not config.get(key)
        ]
    return list(dict.fromkeys(missing))


def _set_path(config: dict[str, Any], path: str, value: str) -> None:
    if not path.startswith(f"{TENANT_SECRETS_KEY}."):
        config.setdefault(path, value)
        return
    tenant, field_name = path.removeprefix(f"{TENANT_SECRETS_KEY}.").rsplit(".", 1)
    secrets = dict(config.get(TENANT_SECRETS_KEY, {}))
    entry = dict(secrets.get(tenant, {}))
    entry.setdefault(field_name, value)
    secrets[tenant] = entry
    config[TENANT_SECRETS_KEY] = secrets


def with_placeholders(
    stack_config: Mapping[str, Any],
    secret_keys: Iterable[str] | None = None,
    *,
    stand_in_missing: bool = False,
) -> OfflineConfig:
    """Replace every encrypted value; with stand_in_missing, also stand in (and list)
    every secret the program requires that the stack file does not hold.

    `secret_keys` are the keys the engine would mark secret (by default: those holding
    an encrypted value). A key the file sets in plaintext stays plaintext, so the
    program refuses it exactly as it does under `pulumi preview`; a stand-in for a key
    the file does not set at all is marked secret, as `config set --secret` would."""
    if secret_keys is None:
        secret_keys = [key for key, value in stack_config.items() if _holds_encrypted(value)]
    secret = set(secret_keys)
    config = {key: _replace_secure(value, key) for key, value in stack_config.items()}
    not_set = missing_secrets(config) if stand_in_missing else []
    for path in not_set:
        key = path.split(".", 1)[0]
        if key not in config:
            secret.add(key)
        _set_path(config, path, not_set_placeholder(path))
    return OfflineConfig(config, sorted(key for key in secret if key in config), not_set)


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

"""Stack configuration as the components see it: typed, validated settings.

This module says what settings are: the frozen dataclasses every component takes, the
raw config they are parsed from (`RawConfig`, `read_raw_config`) and the errors that name
a key (`ConfigProblem`, `SettingsError`). How raw config becomes settings, and every check
on the way, is components/config_parser.py (`parse_settings`), with the tenants in
components/tenant_config.py. Components never see raw config.

Structural config (tenant names, storage modes, images) is plain so it shows in
diffs; secret material lives in separately keyed secret config so that deriving
from it never turns a name or a URL into a secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components import config_checks
from components.config_keys import (
    OBJECT_KEYS,
    PROJECT,
    SCALAR_KEYS,
    MuxChannel,
    StorageMode,
)
from components.secret_value import SecretValue

# --------------------------------------------------------------------------- settings types


@dataclass(frozen=True)
class CloudflareSettings:
    account_id: str | None


@dataclass(frozen=True)
class ImageSettings:
    openclaw: str | None
    mux: str | None


@dataclass(frozen=True)
class PhalaSettings:
    instance_type: str
    dev_os: bool
    ssh_public_key: str | None
    wait_timeout_seconds: int
    region: str | None
    disk_size_gb: int
    os_image: str | None
    kms: str
    verify_health: bool


@dataclass(frozen=True)
class R2StorageSettings:
    bucket: str
    jurisdiction: str
    s3_prefix: str


@dataclass(frozen=True)
class TenantSettings:
    name: str
    storage_mode: StorageMode
    r2: R2StorageSettings | None  # None in local mode
    instance_type: str
    existing_cvm_id: str | None
    allow_data_loss: bool
    allow_key_change: bool
    rollout_wave: int
    config_path: str  # where it is configured, e.g. "tenants[2]", for messages
    master_key: SecretValue = field(repr=False)
    redpill_api_key: SecretValue = field(repr=False)
    # Opt-in: a running s3 tenant may get a new (empty) bucket (components/data_guards.py).
    allow_new_bucket: bool = False


@dataclass(frozen=True)
class MuxSecrets:
    """Explicit mux secrets; whatever is None is derived from `master_key`."""

    master_key: SecretValue | None = field(repr=False)
    register_key: SecretValue | None = field(repr=False)
    admin_token: SecretValue | None = field(repr=False)
    jwt_private_key: SecretValue | None = field(repr=False)  # an Ed25519 PEM, checked
    telegram_bot_token: SecretValue | None = field(repr=False)
    discord_bot_token: SecretValue | None = field(repr=False)


@dataclass(frozen=True)
class MuxSettings:
    name: str
    instance_type: str
    channels: tuple[MuxChannel, ...]
    existing_cvm_id: str | None
    telegram_bot_username: str | None
    allow_data_loss: bool
    allow_key_change: bool
    secrets: MuxSecrets = field(repr=False)


@dataclass(frozen=True)
class Settings:
    cloudflare: CloudflareSettings
    images: ImageSettings
    phala: PhalaSettings
    mux: MuxSettings | None  # a mux deployed by this stack
    mux_stack: str | None  # or a mux taken from another stack's outputs
    tenants: tuple[TenantSettings, ...]
    # Tenants this run may remove although it removes many at once (tenant_removal.py).
    allow_tenant_removal: tuple[str, ...] = ()
    # Not errors, but worth a word in the preview (a leftover opt-in, a provider's key).
    warnings: tuple[str, ...] = ()

    @property
    def s3_tenants(self) -> tuple[TenantSettings, ...]:
        return tuple(t for t in self.tenants if t.storage_mode is StorageMode.S3)


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class ConfigProblem:
    key: str  # as the operator addresses it with --path: tenants[1].bucket
    message: str
    tenant: str | None = None  # names the tenant when the key is positional
    in_project: bool = True  # False: the key is outside the project's namespace, shown as is

    def __str__(self) -> str:
        context = f" (tenant {self.tenant})" if self.tenant else ""
        prefix = f"{PROJECT}:" if self.in_project else ""
        return f"{prefix}{self.key}{context}: {self.message}"


class SettingsError(Exception):
    """Every problem found in the stack config, each naming its key."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"invalid stack configuration ({len(problems)} {noun}):\n{lines}")


class EmptyConfigError(SettingsError):
    """The stack sets nothing at all: one line of its own, not a list of what is missing."""

    MESSAGE = (
        f"the stack sets no {PROJECT} config at all (an empty stack file, or `config:` "
        "empty or null): it would deploy nothing and remove whatever it runs; put the "
        "settings under config: (Pulumi.prod.yaml is a worked example)"
    )

    def __init__(self) -> None:
        problem = ConfigProblem("config", self.MESSAGE, in_project=False)
        self.problems = [problem]
        Exception.__init__(self, f"invalid stack configuration: {self.MESSAGE}")


class Problems:
    """What parsing found so far: problems (each naming its key) and warnings.

    A problem about a value whose path is `opaque` is dropped: the offline plan cannot see
    a value the stack file stores encrypted, and that value's own problem (structure must
    be plain) is already reported, so a check of its stand-in would only add noise."""

    def __init__(self, opaque: frozenset[str] = frozenset()) -> None:
        self.items: list[ConfigProblem] = []
        self.warnings: list[str] = []
        self.opaque = opaque

    def is_opaque(self, key: str) -> bool:
        return any(key == path or key.startswith((f"{path}.", f"{path}[")) for path in self.opaque)

    def add(self, key: str, message: str, tenant: str | None = None) -> None:
        if not self.is_opaque(key):
            self.items.append(ConfigProblem(key, message, tenant))

    def warn(self, key: str, message: str) -> None:
        self.warnings.append(str(ConfigProblem(key, message)))


# --------------------------------------------------------------------------- raw config


@dataclass(frozen=True)
class RawConfig:
    """The stack's config for this project: key (without namespace) -> raw value.

    Values are what the Pulumi engine hands the program: strings, with objects
    and arrays as JSON text. `secret_keys` names the keys stored encrypted.
    """

    values: Mapping[str, str]
    secret_keys: frozenset[str]
    # (full key, message) for keys meant for this project but outside its namespace.
    misplaced: tuple[tuple[str, str], ...] = ()
    # Warnings about keys outside the namespace that someone else does read.
    foreign_warnings: tuple[str, ...] = ()
    # Paths (`tenants[0].name`) of values the stack file stores encrypted, when known:
    # the offline plan reads them from the file; the engine tells only `secret_keys`.
    encrypted_paths: frozenset[str] = frozenset()
    # Problems only the stack file shows (the offline plan finds them), reported first.
    file_problems: tuple[ConfigProblem, ...] = ()


def raw_config_text(value: Any) -> str:
    """A config value as the engine hands it to the program: objects as JSON text."""
    return value if isinstance(value, str) else json.dumps(value)


def read_raw_config(
    all_config: Mapping[str, Any], is_secret: Callable[[str], bool], project: str = PROJECT
) -> RawConfig:
    """Select this project's keys from the engine's config map (full `project:key` names)."""
    prefix = f"{project}:"
    values = {
        key[len(prefix) :]: raw_config_text(value)
        for key, value in all_config.items()
        if key.startswith(prefix)
    }
    secret_keys = frozenset(key for key in values if is_secret(f"{prefix}{key}"))
    known = [key.name for key in SCALAR_KEYS] + list(OBJECT_KEYS)
    found = config_checks.misplaced_keys(all_config, project, known)
    return RawConfig(
        values=values,
        secret_keys=secret_keys,
        misplaced=tuple((key, message) for key, message, refused in found if refused),
        foreign_warnings=tuple(
            f"{key}: {message}" for key, message, refused in found if not refused
        ),
    )

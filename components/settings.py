"""Stack configuration, parsed once into typed and validated settings.

Everything the program reads from `pulumi config` goes through `parse_settings`,
which collects every problem it finds and reports them together, each naming
the config key the operator has to fix. Components never see raw config.

Structural config (tenant names, storage modes, images) is plain so it shows in
diffs; secret material lives in separately keyed secret config so that deriving
from it never turns a name or a URL into a secret.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components import config_checks, mux_jwt_key
from components.config_keys import (
    DEFAULT_S3_PREFIX,
    MAX_ROLLOUT_WAVE,
    MIN_MASTER_KEY_LENGTH,
    OBJECT_KEYS,
    PROJECT,
    R2_JURISDICTIONS,
    SCALAR_KEYS,
    TENANT_FIELDS,
    TENANT_SECRET_FIELDS,
    TENANT_SECRETS_KEY,
    TENANTS_KEY,
    MuxChannel,
    ScalarKey,
    StorageMode,
)
from components.secret_value import SecretValue

_CVM_NAME = re.compile(r"^[a-zA-Z](?!.*--)([a-zA-Z0-9-]*[a-zA-Z0-9])?$")
_R2_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_PINNED_IMAGE = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?"  # registry host or first path part
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"  # further path parts
    r"@sha256:[0-9a-f]{64}$"
)
_ACCOUNT_ID = re.compile(r"^[0-9a-f]{32}$")
_S3_PREFIX = re.compile(r"^[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*$")
_INSTANCE_TYPE = re.compile(r"^[a-z0-9]+(?:\.[a-z0-9-]+)+$")
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SSH_PUBLIC_KEY = re.compile(
    r"^(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)"
    r"|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)"
    r" [A-Za-z0-9+/]+={0,3}(?: [^\r\n]*)?$"
)
_CVM_ID = re.compile(
    r"^(?:[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
    r"|(?:app_)?[0-9a-f]{40})$"
)
_STACK_NAME = re.compile(r"^[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+){0,2}$")
_TELEGRAM_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")


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


class _Problems:
    def __init__(self) -> None:
        self.items: list[ConfigProblem] = []

    def add(self, key: str, message: str, tenant: str | None = None) -> None:
        self.items.append(ConfigProblem(key, message, tenant))


# --------------------------------------------------------------------------- parsing


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


def parse_settings(raw: RawConfig) -> Settings:
    """Validate the whole config; raise SettingsError listing every problem."""
    problems = _Problems()
    for key, message in raw.misplaced:
        problems.items.append(ConfigProblem(key, message, in_project=False))
    _check_unknown_keys(raw, problems)
    scalars = {key.name: _read_scalar(raw, key, problems) for key in SCALAR_KEYS}

    phala = _phala_settings(scalars, problems)
    cloudflare = CloudflareSettings(account_id=_optional(scalars["cloudflareAccountId"]))
    if cloudflare.account_id is not None and not _ACCOUNT_ID.fullmatch(cloudflare.account_id):
        problems.add("cloudflareAccountId", "must be the 32-character hex Cloudflare account id")

    images = ImageSettings(
        openclaw=_optional(scalars["openclawImage"]), mux=_optional(scalars["muxImage"])
    )
    for key, image in (("openclawImage", images.openclaw), ("muxImage", images.mux)):
        if image is not None and not _PINNED_IMAGE.fullmatch(image):
            problems.add(
                key,
                "must be pinned by digest as <repo>@sha256:<64 lowercase hex> (no tag), "
                "so every deploy runs exactly the reviewed image",
            )

    tenants = _tenant_settings(raw, scalars, phala, problems)
    mux = _mux_settings(scalars, phala, problems)
    mux_stack = _optional(scalars["muxStack"])
    if mux_stack is not None and not _STACK_NAME.fullmatch(mux_stack):
        problems.add(
            "muxStack", "must name a stack: <stack>, <project>/<stack> or <org>/<proj>/<stack>"
        )
    if mux is not None and mux_stack is not None:
        problems.add("muxStack", "cannot be combined with muxName: deploy a mux or reference one")

    _check_cross_references(tenants, mux, images, cloudflare, problems)
    if problems.items:
        raise SettingsError(problems.items)
    return Settings(
        cloudflare=cloudflare,
        images=images,
        phala=phala,
        mux=mux,
        mux_stack=mux_stack,
        tenants=tuple(tenants),
    )


def _unknown(kind: str, key: str, known: Iterable[str]) -> str:
    """A message for a key nobody reads: a typo must not be silently ignored."""
    close = difflib.get_close_matches(key, list(known), n=1)
    if close:
        return f"unknown {kind}; did you mean '{close[0]}'?"
    return f"unknown {kind} (known: {', '.join(sorted(known))})"


def _check_unknown_keys(raw: RawConfig, problems: _Problems) -> None:
    known = {key.name for key in SCALAR_KEYS} | set(OBJECT_KEYS)
    for key in sorted(set(raw.values) - known):
        problems.add(key, _unknown("config key", key, known))


def _read_scalar(raw: RawConfig, key: ScalarKey, problems: _Problems) -> Any:
    text = raw.values.get(key.name)
    if text is None:
        return key.default
    if key.secret and text != "" and key.name not in raw.secret_keys:
        problems.add(
            key.name,
            f"holds a secret in plaintext; set it with: pulumi config set --secret {key.name}",
        )
    if key.type == "string":
        return text
    if key.type == "boolean":
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        problems.add(key.name, "must be true or false")
        return key.default
    if key.type == "integer":
        if re.fullmatch(r"-?[0-9]+", text.strip()):
            return int(text)
        problems.add(key.name, "must be a whole number")
        return key.default
    # array of strings
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(key.name, 'must be a list of strings, e.g. ["telegram"]')
        return key.default
    return value


def _optional(text: str) -> str | None:
    return text if text != "" else None


def _phala_settings(scalars: Mapping[str, Any], problems: _Problems) -> PhalaSettings:
    instance_type = scalars["phalaInstanceType"]
    _check_instance_type("phalaInstanceType", instance_type, problems)
    ssh_key = _optional(scalars["phalaSshPublicKey"].strip())
    if scalars["phalaDevOs"] and ssh_key is None:
        problems.add(
            "phalaSshPublicKey",
            "is required when phalaDevOs is true (the dev OS is for SSH access); "
            "set it, or set phalaDevOs to false",
        )
    ssh_too_long = ssh_key and config_checks.too_long(
        ssh_key, config_checks.MAX_SSH_PUBLIC_KEY_LENGTH
    )
    if ssh_too_long:
        problems.add("phalaSshPublicKey", f"{ssh_too_long}; give one OpenSSH public key line")
    elif ssh_key is not None and not _SSH_PUBLIC_KEY.fullmatch(ssh_key):
        problems.add(
            "phalaSshPublicKey", "must be one OpenSSH public key line: ssh-ed25519 AAAA..."
        )
    timeout = scalars["phalaWaitTimeoutSeconds"]
    if not 30 <= timeout <= 3600:
        problems.add("phalaWaitTimeoutSeconds", "must be between 30 and 3600 seconds")
    disk = scalars["phalaDiskSizeGb"]
    if not 10 <= disk <= 2048:
        problems.add("phalaDiskSizeGb", "must be between 10 and 2048 GB")
    region = _optional(scalars["phalaRegion"])
    if region is not None and not _SLUG.fullmatch(region):
        problems.add("phalaRegion", "must be a region slug such as US-WEST-1")
    os_image = _optional(scalars["phalaOsImage"])
    if os_image is not None and not _SLUG.fullmatch(os_image):
        problems.add("phalaOsImage", "must be an OS image name such as dstack-dev-0.5.7")
    kms = scalars["phalaKms"]
    if kms != "phala":
        problems.add("phalaKms", "only 'phala' is supported (on-chain KMS needs a wallet flow)")
    return PhalaSettings(
        instance_type=instance_type,
        dev_os=scalars["phalaDevOs"],
        ssh_public_key=ssh_key,
        wait_timeout_seconds=timeout,
        region=region,
        disk_size_gb=disk,
        os_image=os_image,
        kms=kms,
        verify_health=scalars["phalaVerifyHealth"],
    )


def _check_instance_type(
    key: str, value: str, problems: _Problems, tenant: str | None = None
) -> None:
    too_long = config_checks.too_long(value, config_checks.MAX_INSTANCE_TYPE_LENGTH)
    if too_long:
        problems.add(key, f"{too_long}; give a Phala instance type such as tdx.medium", tenant)
    elif not _INSTANCE_TYPE.fullmatch(value):
        problems.add(key, "must be a Phala instance type such as tdx.small or tdx.medium", tenant)


def _check_cvm_id(
    key: str, value: str | None, problems: _Problems, tenant: str | None = None
) -> None:
    if value is not None and not _CVM_ID.fullmatch(value):
        problems.add(key, "must be a CVM UUID or app_<40 hex>", tenant)


def check_cvm_name(name: str) -> str | None:
    """Return why the phala CLI would reject this CVM name, or None if it is valid."""
    if not 5 <= len(name) <= 63:
        return f"must be 5 to 63 characters (has {len(name)})"
    non_ascii = config_checks.non_ascii_reason(name, "a CVM name")
    if non_ascii is not None:
        return non_ascii
    if not name[0].isalpha():
        return f"must start with a letter (starts with '{name[0]}')"
    if not _CVM_NAME.fullmatch(name):
        return "may contain only letters, digits and single hyphens, and must not end with a hyphen"
    return None


def check_r2_bucket_name(bucket: str) -> str | None:
    """Return why R2 would reject this bucket name, or None if it is valid."""
    if not 3 <= len(bucket) <= 63:
        return f"must be 3 to 63 characters (has {len(bucket)})"
    if not _R2_BUCKET.fullmatch(bucket):
        return (
            "may contain only lowercase letters, digits and hyphens, "
            "and must start and end with a letter or digit"
        )
    return None


def _load_json_object(
    raw: RawConfig, key: str, expected: type, example: str, problems: _Problems
) -> Any:
    text = raw.values.get(key)
    if text is None:
        return expected()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, expected):
        problems.add(key, f"must be {example}")
        return expected()
    return value


def _tenant_settings(
    raw: RawConfig, scalars: Mapping[str, Any], phala: PhalaSettings, problems: _Problems
) -> list[TenantSettings]:
    entries = _load_json_object(raw, TENANTS_KEY, list, "a list of tenant objects", problems)
    secrets = _load_json_object(
        raw, TENANT_SECRETS_KEY, dict, "an object keyed by tenant name", problems
    )
    if secrets and TENANT_SECRETS_KEY not in raw.secret_keys:
        problems.add(
            TENANT_SECRETS_KEY,
            "holds secrets in plaintext; set each value with: pulumi config set --secret "
            "--path 'tenantSecrets.<tenant>.masterKey' <value>",
        )
    shared_redpill = _optional(scalars["redpillApiKey"])

    tenants: list[TenantSettings] = []
    seen: dict[str, str] = {}  # lower-cased name -> where it was first defined
    bucket_owners: dict[str, str] = {}
    for index, entry in enumerate(entries):
        where = f"tenants[{index}]"
        if not isinstance(entry, dict):
            problems.add(where, "must be an object with at least a name")
            continue
        tenant = _one_tenant(where, entry, secrets, shared_redpill, phala, problems)
        if tenant is None:
            continue
        folded = tenant.name.lower()
        if folded in seen:
            problems.add(
                f"{where}.name",
                f"duplicate tenant name '{tenant.name}' (also {seen[folded]}); "
                "names must be unique ignoring case",
            )
            continue
        seen[folded] = where
        if tenant.r2 is not None:
            owner = bucket_owners.setdefault(tenant.r2.bucket, tenant.name)
            if owner != tenant.name:
                problems.add(
                    f"{where}.bucket",
                    f"bucket '{tenant.r2.bucket}' is already used by tenant {owner}",
                    tenant.name,
                )
        tenants.append(tenant)

    for tenant_name in sorted(set(secrets) - {t.name for t in tenants}):
        if any(
            isinstance(e, dict) and e.get("name") == tenant_name for e in entries
        ):  # already reported as an invalid tenant
            continue
        problems.add(
            f"{TENANT_SECRETS_KEY}.{tenant_name}",
            f"secrets for a tenant that does not exist in {TENANTS_KEY}",
        )
    return tenants


def _one_tenant(
    where: str,
    entry: Mapping[str, Any],
    all_secrets: Mapping[str, Any],
    shared_redpill: str | None,
    phala: PhalaSettings,
    problems: _Problems,
) -> TenantSettings | None:
    before = len(problems.items)
    raw_name = entry.get("name")
    tenant = raw_name if isinstance(raw_name, str) else None

    def report(field_name: str, message: str) -> None:
        problems.add(f"{where}.{field_name}", message, tenant)

    for unknown in sorted(set(entry) - set(TENANT_FIELDS)):
        report(unknown, _unknown("tenant field", unknown, TENANT_FIELDS))

    def text(field_name: str, default: str | None = None) -> str | None:
        value = entry.get(field_name, default)
        if value is None or isinstance(value, str):
            return value
        report(field_name, "must be a string")
        return default

    name = text("name")
    if name is None:
        report("name", "is required")
        return None
    reason = check_cvm_name(name)
    if reason is not None:
        report("name", f"'{name}' is not a valid CVM name: {reason}")
        return None

    storage_text = text("storage", StorageMode.S3.value)
    try:
        storage = StorageMode(storage_text)
    except ValueError:
        report("storage", "must be 's3' or 'local'")
        storage = StorageMode.S3

    r2: R2StorageSettings | None = None
    if storage is StorageMode.S3:
        bucket = text("bucket", f"openclaw-{name.lower()}") or ""
        reason = check_r2_bucket_name(bucket)
        if reason is not None:
            hint = "" if "bucket" in entry else " (derived from the name; set bucket explicitly)"
            report("bucket", f"'{bucket}' is not a valid R2 bucket name: {reason}{hint}")
        jurisdiction = text("jurisdiction", "default") or ""
        if jurisdiction not in R2_JURISDICTIONS:
            report("jurisdiction", f"must be one of: {', '.join(R2_JURISDICTIONS)}")
        prefix = text("s3Prefix", DEFAULT_S3_PREFIX) or ""
        if len(prefix) > 256 or not _S3_PREFIX.fullmatch(prefix):
            report(
                "s3Prefix",
                "must be a relative key prefix of letters, digits, '.', '_', '-' and single '/'",
            )
        elif (dot_segment := config_checks.s3_prefix_dot_segment(prefix)) is not None:
            report("s3Prefix", dot_segment)
        r2 = R2StorageSettings(bucket=bucket, jurisdiction=jurisdiction, s3_prefix=prefix)
    else:
        for s3_only in ("bucket", "jurisdiction", "s3Prefix"):
            if s3_only in entry:
                report(s3_only, "applies only to storage 's3'")

    instance_type = text("instanceType", phala.instance_type) or ""
    if "instanceType" in entry:  # an inherited one is checked (and blamed) as phalaInstanceType
        _check_instance_type(f"{where}.instanceType", instance_type, problems, tenant)
    cvm_id = text("cvmId")
    _check_cvm_id(f"{where}.cvmId", cvm_id, problems, tenant)
    allow_data_loss = entry.get("allowDataLoss", False)
    if not isinstance(allow_data_loss, bool):
        report("allowDataLoss", "must be true or false")
        allow_data_loss = False
    elif allow_data_loss and storage is StorageMode.S3:
        report(
            "allowDataLoss",
            "applies only to storage 'local' (s3 state survives a CVM replacement)",
        )

    allow_key_change = entry.get("allowKeyChange", False)
    if not isinstance(allow_key_change, bool):
        report("allowKeyChange", "must be true or false")
        allow_key_change = False
    allow_new_bucket = entry.get("allowNewBucket", False)
    if not isinstance(allow_new_bucket, bool):
        report("allowNewBucket", "must be true or false")
        allow_new_bucket = False
    elif allow_new_bucket and storage is not StorageMode.S3:
        report("allowNewBucket", "applies only to storage 's3'")
    rollout_wave = entry.get("rolloutWave", 0)
    if (
        isinstance(rollout_wave, bool)
        or not isinstance(rollout_wave, int)
        or not 0 <= rollout_wave <= MAX_ROLLOUT_WAVE
    ):
        report("rolloutWave", f"must be a whole number from 0 to {MAX_ROLLOUT_WAVE}")
        rollout_wave = 0

    master_key, redpill = _tenant_secrets(name, all_secrets, shared_redpill, problems)
    if len(problems.items) > before or master_key is None or redpill is None:
        return None
    return TenantSettings(
        name=name,
        storage_mode=storage,
        r2=r2,
        instance_type=instance_type,
        existing_cvm_id=cvm_id,
        allow_data_loss=allow_data_loss,
        allow_key_change=allow_key_change,
        rollout_wave=rollout_wave,
        config_path=where,
        master_key=master_key,
        redpill_api_key=redpill,
        allow_new_bucket=allow_new_bucket,
    )


def _tenant_secrets(
    name: str,
    all_secrets: Mapping[str, Any],
    shared_redpill: str | None,
    problems: _Problems,
) -> tuple[SecretValue | None, SecretValue | None]:
    where = f"{TENANT_SECRETS_KEY}.{name}"
    how = f"pulumi config set --secret --path '{where}.masterKey' <key>"
    entry = all_secrets.get(name)
    if entry is None:
        problems.add(
            f"{where}.masterKey",
            f"is missing: every tenant needs its MASTER_KEY (a running tenant keeps its current "
            f"key, or its encrypted state is lost); set it with: {how}",
        )
        return None, None
    if not isinstance(entry, dict):
        problems.add(where, "must be an object with masterKey (and optionally redpillApiKey)")
        return None, None
    for unknown in sorted(set(entry) - set(TENANT_SECRET_FIELDS)):
        problems.add(f"{where}.{unknown}", _unknown("tenant secret", unknown, TENANT_SECRET_FIELDS))

    master_key = entry.get("masterKey")
    checked_key: SecretValue | None = None
    if master_key is None or master_key == "":
        problems.add(f"{where}.masterKey", f"is missing; set it with: {how}")
    elif not isinstance(master_key, str):
        problems.add(f"{where}.masterKey", "must be a string")
    elif len(master_key) < MIN_MASTER_KEY_LENGTH:
        problems.add(
            f"{where}.masterKey",
            f"is too short ({len(master_key)} characters; at least {MIN_MASTER_KEY_LENGTH}). "
            "Generate one with: head -c 32 /dev/urandom | base64",
        )
    elif _has_edge_whitespace(master_key):
        problems.add(
            f"{where}.masterKey",
            "has leading or trailing whitespace; the image's shell (untrimmed) and OpenClaw's "
            "device identity (trimmed) would derive different keys from it",
        )
    else:
        checked_key = SecretValue(master_key)

    redpill = entry.get("redpillApiKey", shared_redpill)
    checked_redpill: SecretValue | None = None
    if redpill is None or redpill == "":
        problems.add(
            f"{where}.redpillApiKey",
            "no Redpill API key: set redpillApiKey (shared) or this per-tenant override",
        )
    elif not isinstance(redpill, str):
        problems.add(f"{where}.redpillApiKey", "must be a string")
    else:
        checked_redpill = SecretValue(redpill)
    return checked_key, checked_redpill


def _has_edge_whitespace(key: str) -> bool:
    # Python's isspace() and JavaScript's trim() differ only in U+FEFF, which JS trims.
    return any(edge.isspace() or edge == "\ufeff" for edge in (key[0], key[-1]))


def _mux_settings(
    scalars: Mapping[str, Any], phala: PhalaSettings, problems: _Problems
) -> MuxSettings | None:
    name = _optional(scalars["muxName"])
    secret = {
        key: (SecretValue(scalars[key]) if scalars[key] else None)
        for key in (
            "muxMasterKey",
            "muxRegisterKey",
            "muxAdminToken",
            "muxJwtPrivateKey",
            "muxTelegramBotToken",
            "muxDiscordBotToken",
        )
    }
    if name is None:
        for key, value in secret.items():
            if value is not None:
                problems.add(key, "is set but muxName is empty, so no mux is deployed")
        return None

    reason = check_cvm_name(name)
    if reason is not None:
        problems.add("muxName", f"'{name}' is not a valid CVM name: {reason}")
    own_instance_type = _optional(scalars["muxInstanceType"])
    instance_type = own_instance_type or phala.instance_type
    if own_instance_type is not None:  # an inherited one is reported as phalaInstanceType
        _check_instance_type("muxInstanceType", instance_type, problems)

    channels: list[MuxChannel] = []
    for value in scalars["muxChannels"]:
        try:
            channel = MuxChannel(value)
        except ValueError:
            problems.add("muxChannels", f"unknown channel '{value}' (telegram, discord, whatsapp)")
            continue
        if channel in channels:
            problems.add("muxChannels", f"lists '{value}' twice")
        channels.append(channel)
    if not scalars["muxChannels"]:
        problems.add("muxChannels", "a mux needs at least one channel: telegram, discord, whatsapp")

    token_for_channel = {
        MuxChannel.TELEGRAM: "muxTelegramBotToken",
        MuxChannel.DISCORD: "muxDiscordBotToken",
    }
    for channel, key in token_for_channel.items():
        if channel in channels and secret[key] is None:
            problems.add(key, f"is required because muxChannels includes '{channel.value}'")
        if channel not in channels and secret[key] is not None:
            problems.add(key, f"is set but muxChannels does not include '{channel.value}'")

    if secret["muxMasterKey"] is None:
        for key in ("muxRegisterKey", "muxAdminToken"):
            if secret[key] is None:
                problems.add(key, "is required unless muxMasterKey is set to derive it")
    elif len(secret["muxMasterKey"]) < MIN_MASTER_KEY_LENGTH:
        problems.add("muxMasterKey", f"is too short (at least {MIN_MASTER_KEY_LENGTH} characters)")
    jwt_key = secret["muxJwtPrivateKey"]
    # A key the mux could not load would stop it at boot: refused here, at preview.
    jwt_key_problem = mux_jwt_key.problem(jwt_key.reveal()) if jwt_key is not None else None
    if jwt_key_problem is not None:
        problems.add("muxJwtPrivateKey", jwt_key_problem)

    username = _optional(scalars["muxTelegramBotUsername"])
    if username is not None and not _TELEGRAM_USERNAME.fullmatch(username.lstrip("@")):
        problems.add("muxTelegramBotUsername", "must be a Telegram bot username such as my_bot")

    cvm_id = _optional(scalars["muxCvmId"])
    _check_cvm_id("muxCvmId", cvm_id, problems)

    return MuxSettings(
        name=name,
        instance_type=instance_type,
        channels=tuple(channels),
        existing_cvm_id=cvm_id,
        telegram_bot_username=username.lstrip("@") if username else None,
        allow_data_loss=scalars["muxAllowDataLoss"],
        allow_key_change=scalars["muxAllowKeyChange"],
        secrets=MuxSecrets(
            master_key=secret["muxMasterKey"],
            register_key=secret["muxRegisterKey"],
            admin_token=secret["muxAdminToken"],
            jwt_private_key=jwt_key,
            telegram_bot_token=secret["muxTelegramBotToken"],
            discord_bot_token=secret["muxDiscordBotToken"],
        ),
    )


def _check_cross_references(
    tenants: list[TenantSettings],
    mux: MuxSettings | None,
    images: ImageSettings,
    cloudflare: CloudflareSettings,
    problems: _Problems,
) -> None:
    if tenants and images.openclaw is None:
        problems.add("openclawImage", "is required: the stack has tenants to deploy")
    if mux is not None and images.mux is None:
        problems.add("muxImage", "is required because muxName is set")
    s3_tenants = [t for t in tenants if t.storage_mode is StorageMode.S3]
    if s3_tenants and cloudflare.account_id is None:
        names = ", ".join(t.name for t in s3_tenants)
        problems.add(
            "cloudflareAccountId",
            f"is required because these tenants use s3 storage: {names}",
        )
    if mux is not None:
        for tenant in tenants:
            if tenant.name.lower() == mux.name.lower():
                problems.add("muxName", f"'{mux.name}' is also a tenant name; roles must differ")
    adopted = [("muxCvmId", f"mux {mux.name}", mux.existing_cvm_id)] if mux is not None else []
    adopted += [(f"{t.config_path}.cvmId", f"tenant {t.name}", t.existing_cvm_id) for t in tenants]
    for key, message in config_checks.duplicate_cvm_ids(adopted):
        problems.add(key, message)


# --------------------------------------------------------------------------- reading Pulumi config


def read_raw_config(
    all_config: Mapping[str, Any], is_secret: Callable[[str], bool], project: str = PROJECT
) -> RawConfig:
    """Select this project's keys from the engine's config map (full `project:key` names)."""
    prefix = f"{project}:"
    values = {
        key[len(prefix) :]: value if isinstance(value, str) else json.dumps(value)
        for key, value in all_config.items()
        if key.startswith(prefix)
    }
    secret_keys = frozenset(key for key in values if is_secret(f"{prefix}{key}"))
    known = [key.name for key in SCALAR_KEYS] + list(OBJECT_KEYS)
    misplaced = tuple(config_checks.misplaced_keys(all_config, project, known))
    return RawConfig(values=values, secret_keys=secret_keys, misplaced=misplaced)

"""Tenants and their secrets: `tenants` and `tenantSecrets`, parsed into TenantSettings.

Every problem is found in one pass: a tenant with a bad field is still checked for a
duplicate name, a shared bucket and its secrets, so one `pulumi preview` lists them all.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components import config_checks
from components.config_keys import (
    DEFAULT_S3_PREFIX,
    MAX_ROLLOUT_WAVE,
    MAX_S3_PREFIX_LENGTH,
    MAX_SECRET_LENGTH,
    MAX_TENANTS,
    MIN_MASTER_KEY_LENGTH,
    R2_JURISDICTIONS,
    TENANT_FIELDS,
    TENANT_SECRET_FIELDS,
    TENANT_SECRETS_KEY,
    TENANTS_KEY,
    StorageMode,
)
from components.config_values import (
    S3_PREFIX,
    check_cvm_id,
    check_cvm_name,
    check_instance_type,
    check_r2_bucket_name,
)
from components.secret_value import SecretValue
from components.settings import Problems, R2StorageSettings, RawConfig, TenantSettings


def unknown_key_message(kind: str, key: str, known: Any) -> str:
    """A message for a key nobody reads: a typo must not be silently ignored."""
    close = difflib.get_close_matches(key, list(known), n=1)
    if close:
        return f"unknown {kind}; did you mean '{close[0]}'?"
    return f"unknown {kind} (known: {', '.join(sorted(known))})"


def load_json(raw: RawConfig, key: str, expected: type, example: str, problems: Problems) -> Any:
    """A key's JSON value if it is of the expected type, else its empty value (and a problem)."""
    text = raw.values.get(key)
    if text is None:
        return expected()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    except RecursionError:  # Pulumi reads up to 10000 levels; Python's decoder fewer
        problems.add(key, "nests collections too deeply to read; a config nests a few levels")
        return expected()
    if not isinstance(value, expected):
        problems.add(key, f"must be {example}")
        return expected()
    return value


@dataclass(frozen=True)
class _TenantFields:
    """A tenant's own fields, checked; secrets and cross-checks come apart."""

    storage: StorageMode
    storage_known: bool  # False: the given storage is not a mode (s3 stands in for it)
    r2: R2StorageSettings | None
    instance_type: str
    cvm_id: str | None
    allow_data_loss: bool
    allow_key_change: bool
    allow_new_bucket: bool
    rollout_wave: int


@dataclass(frozen=True)
class ParsedTenants:
    valid: list[TenantSettings]  # the tenants without a problem
    declared: int  # entries in `tenants`, valid or not
    s3_names: list[str]  # names of the declared tenants that store in s3, valid or not


def tenant_settings(
    raw: RawConfig, shared_redpill: str | None, default_instance_type: str, problems: Problems
) -> ParsedTenants:
    entries = load_json(raw, TENANTS_KEY, list, "a list of tenant objects", problems)
    secrets = load_json(raw, TENANT_SECRETS_KEY, dict, "an object keyed by tenant name", problems)
    if secrets and TENANT_SECRETS_KEY not in raw.secret_keys:
        problems.add(
            TENANT_SECRETS_KEY,
            "holds secrets in plaintext; set each value with: pulumi config set --secret "
            "--path 'tenantSecrets.<tenant>.masterKey' <value>",
        )
    if len(entries) > MAX_TENANTS:
        problems.add(TENANTS_KEY, f"lists {len(entries)} tenants; at most {MAX_TENANTS}")
        return ParsedTenants([], len(entries), [])

    tenants: list[TenantSettings] = []
    seen: dict[str, str] = {}  # lower-cased name -> where it was first defined
    named: set[str] = set()  # every tenant name given as text, valid or not
    names_hidden = False  # a name the offline plan cannot read (stored encrypted)
    bucket_owners: dict[str, str] = {}
    s3_names: list[str] = []
    for index, entry in enumerate(entries):
        where = f"tenants[{index}]"
        if not isinstance(entry, dict):
            problems.add(where, "must be an object with at least a name")
            continue
        before = len(problems.items)
        hidden = problems.is_opaque(f"{where}.name")
        names_hidden = names_hidden or hidden
        name = _tenant_name(where, entry, problems, hidden)
        label = name if name is not None and not hidden else None
        # A bucket is derived from a valid, readable name only: a bad name is its own problem.
        derives = name if label is not None and check_cvm_name(label) is None else None
        fields = _tenant_fields(where, entry, derives, label, default_instance_type, problems)
        if name is None or hidden:
            continue
        if fields.r2 is not None and fields.storage_known:
            s3_names.append(name)
        named.add(name)
        folded = name.lower()
        duplicate = folded in seen
        if duplicate:
            problems.add(
                f"{where}.name",
                f"duplicate tenant name '{name}' (also {seen[folded]}); "
                "names must be unique ignoring case",
            )
        else:
            seen[folded] = where
        # A duplicate's derived bucket is the first one's: that is its name's problem.
        if (
            not duplicate
            and fields.r2 is not None
            and check_r2_bucket_name(fields.r2.bucket) is None
        ):
            owner = bucket_owners.setdefault(fields.r2.bucket, name)
            if owner != name:
                problems.add(
                    f"{where}.bucket",
                    f"bucket '{fields.r2.bucket}' is already used by tenant {owner}",
                    name,
                )
        master_key, redpill = _tenant_secrets(name, secrets, shared_redpill, problems)
        if len(problems.items) > before or master_key is None or redpill is None:
            continue
        tenants.append(
            TenantSettings(
                name=name,
                storage_mode=fields.storage,
                r2=fields.r2,
                instance_type=fields.instance_type,
                existing_cvm_id=fields.cvm_id,
                allow_data_loss=fields.allow_data_loss,
                allow_key_change=fields.allow_key_change,
                rollout_wave=fields.rollout_wave,
                config_path=where,
                master_key=master_key,
                redpill_api_key=redpill,
                allow_new_bucket=fields.allow_new_bucket,
            )
        )

    if not names_hidden:  # a hidden name may own any of these secrets
        for tenant_name in sorted(set(secrets) - named):
            problems.add(
                f"{TENANT_SECRETS_KEY}.{tenant_name}",
                f"secrets for a tenant that does not exist in {TENANTS_KEY}",
            )
    return ParsedTenants(tenants, len(entries), s3_names)


def _tenant_name(
    where: str, entry: Mapping[str, Any], problems: Problems, hidden: bool
) -> str | None:
    """The tenant's name if it is text (checked as a CVM name), else None."""
    raw_name = entry.get("name")
    if raw_name is None:
        problems.add(f"{where}.name", "is required")
        return None
    if not isinstance(raw_name, str):
        problems.add(f"{where}.name", "must be a string")
        return None
    reason = None if hidden else check_cvm_name(raw_name)
    if reason is not None:
        problems.add(f"{where}.name", f"'{raw_name}' is not a valid CVM name: {reason}", raw_name)
    return raw_name


def _tenant_fields(
    where: str,
    entry: Mapping[str, Any],
    name: str | None,  # the valid name a default bucket is derived from, if any
    label: str | None,
    default_instance_type: str,
    problems: Problems,
) -> _TenantFields:
    def report(field_name: str, message: str) -> None:
        problems.add(f"{where}.{field_name}", message, label)

    for unknown in sorted(set(entry) - set(TENANT_FIELDS)):
        report(unknown, unknown_key_message("tenant field", unknown, TENANT_FIELDS))

    def text(field_name: str, default: str) -> str:
        value = entry.get(field_name, default)
        if isinstance(value, str):
            return value
        if value is None:
            report(field_name, "is null; give a value or remove the field")
        else:
            report(field_name, "must be a string")
        return default

    def flag(field_name: str) -> bool:
        value = entry.get(field_name, False)
        if isinstance(value, bool):
            return value
        report(field_name, "must be true or false")
        return False

    storage_text = text("storage", StorageMode.S3.value)
    storage_known = storage_text in (mode.value for mode in StorageMode)
    if storage_known:
        storage = StorageMode(storage_text)
    else:
        report("storage", "must be 's3' or 'local'")
        storage = StorageMode.S3  # its s3 fields are still checked

    r2: R2StorageSettings | None = None
    if storage is StorageMode.S3:
        derived = f"openclaw-{(name or '').lower()}"
        bucket = text("bucket", derived)
        reason = check_r2_bucket_name(bucket) if name is not None or "bucket" in entry else None
        if reason is not None:
            hint = "" if "bucket" in entry else " (derived from the name; set bucket explicitly)"
            report("bucket", f"'{bucket}' is not a valid R2 bucket name: {reason}{hint}")
        jurisdiction = text("jurisdiction", "default")
        if jurisdiction not in R2_JURISDICTIONS:
            report("jurisdiction", f"must be one of: {', '.join(R2_JURISDICTIONS)}")
        prefix = text("s3Prefix", DEFAULT_S3_PREFIX)
        if len(prefix) > MAX_S3_PREFIX_LENGTH:
            report("s3Prefix", f"is {len(prefix)} characters long; at most {MAX_S3_PREFIX_LENGTH}")
        elif not S3_PREFIX.fullmatch(prefix):
            report(
                "s3Prefix",
                "must be a relative key prefix of letters, digits, '.', '_', '-' and single '/' "
                "(no leading or trailing '/')",
            )
        elif (dot_segment := config_checks.s3_prefix_dot_segment(prefix)) is not None:
            report("s3Prefix", dot_segment)
        r2 = R2StorageSettings(bucket=bucket, jurisdiction=jurisdiction, s3_prefix=prefix)
    else:
        for s3_only in ("bucket", "jurisdiction", "s3Prefix"):
            if s3_only in entry:
                report(s3_only, "applies only to storage 's3'")

    instance_type = text("instanceType", default_instance_type)
    if "instanceType" in entry:  # an inherited one is checked (and blamed) as phalaInstanceType
        reason = check_instance_type(instance_type)
        if reason is not None:
            report("instanceType", reason)
    cvm_id: str | None = None
    if "cvmId" in entry:
        cvm_id = text("cvmId", "") or None
        reason = check_cvm_id(cvm_id) if cvm_id is not None else None
        if reason is not None:
            report("cvmId", reason)
    allow_data_loss = flag("allowDataLoss")
    if allow_data_loss and storage is StorageMode.S3:
        report(
            "allowDataLoss",
            "applies only to storage 'local' (s3 state survives a CVM replacement)",
        )
    allow_key_change = flag("allowKeyChange")
    allow_new_bucket = flag("allowNewBucket")
    if allow_new_bucket and storage is not StorageMode.S3:
        report("allowNewBucket", "applies only to storage 's3'")
    rollout_wave = entry.get("rolloutWave", 0)
    if (
        isinstance(rollout_wave, bool)
        or not isinstance(rollout_wave, int)
        or not 0 <= rollout_wave <= MAX_ROLLOUT_WAVE
    ):
        report("rolloutWave", f"must be a whole number from 0 to {MAX_ROLLOUT_WAVE}")
        rollout_wave = 0
    return _TenantFields(
        storage=storage,
        storage_known=storage_known,
        r2=r2,
        instance_type=instance_type,
        cvm_id=cvm_id,
        allow_data_loss=allow_data_loss,
        allow_key_change=allow_key_change,
        allow_new_bucket=allow_new_bucket,
        rollout_wave=rollout_wave,
    )


def _tenant_secrets(
    name: str,
    all_secrets: Mapping[str, Any],
    shared_redpill: str | None,
    problems: Problems,
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
        problems.add(
            f"{where}.{unknown}",
            unknown_key_message("tenant secret", unknown, TENANT_SECRET_FIELDS),
        )

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
    elif len(master_key) > MAX_SECRET_LENGTH:
        problems.add(
            f"{where}.masterKey",
            f"is {len(master_key)} characters long; at most {MAX_SECRET_LENGTH}",
        )
    elif has_edge_whitespace(master_key):
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
    elif len(redpill) > MAX_SECRET_LENGTH:
        problems.add(
            f"{where}.redpillApiKey",
            f"is {len(redpill)} characters long; at most {MAX_SECRET_LENGTH}",
        )
    else:
        checked_redpill = SecretValue(redpill)
    return checked_key, checked_redpill


def has_edge_whitespace(key: str) -> bool:
    # Python's isspace() and JavaScript's trim() differ only in U+FEFF, which JS trims.
    return any(edge.isspace() or edge == "\ufeff" for edge in (key[0], key[-1]))

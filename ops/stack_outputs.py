"""Load and validate the Pulumi stack outputs (contract v1) the ops CLI works from.

The Pulumi program exports one versioned contract::

    contractVersion  1
    tenants          {name: {...}}    public per-tenant facts (URLs, ids, S3 location)
    tenantSecrets    {name: {...}}    gateway token, dashboard URL, S3 credentials
    mux              {...} | null     the shared mux-server CVM, if the stack runs one
                                      (its optional ``channels`` list came later)
    muxSecrets       {...} | null     mux register key and admin token

Outputs come either from ``pulumi stack output --json --show-secrets`` or from a
JSON file holding the same document (which is how the tests and an operator
without the Pulumi CLI feed it in). Validation is strict about what the CLI
reads, so a renamed or missing output fails here with its name instead of as a
KeyError deep inside a command; keys the CLI does not read are ignored, so the
program may add outputs without breaking older copies of the CLI.

Error messages name outputs and tenants but never echo a value from a secret
record: at most its JSON type.
"""

from __future__ import annotations

import difflib
import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

from components.mux_protocol import MUX_CHANNEL_NAMES
from ops import ConfigError, read_utf8_file

CONTRACT_VERSION: Final = 1
StorageMode = Literal["s3", "local"]
STORAGE_MODES: Final[tuple[str, ...]] = ("s3", "local")

# What `pulumi stack output --json` prints for a secret when --show-secrets is
# missing; spotting it turns a confusing type error into the actual fix.
PULUMI_SECRET_PLACEHOLDER: Final = "[secret]"  # noqa: S105 - a marker, not a secret

# The Pulumi project (Pulumi.yaml) lives at the repository root, next to ops/.
PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
PULUMI_TIMEOUT_SEC: Final = 120
# 1000 tenants (the settings' limit) take about 2.5 MB; far more is not an outputs file.
MAX_OUTPUTS_FILE_BYTES: Final = 32 * 1024 * 1024

# Values the CLI hands to other programs (phala, ssh) are checked as data first, so none
# can read as an option (`--help`) or reach a shell (ssh's ProxyCommand expands %h).
_IDENTIFIER: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_HOST_NAME: Final = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
# (JSON key, attribute, what it must be, pattern) for the values checked as data.
_CHECKED_VALUES: Final = (
    (
        "cvmId",
        "cvm_id",
        "a CVM id (letters, digits, '_' and '-', not starting with '-')",
        _IDENTIFIER,
    ),
    (
        "appId",
        "app_id",
        "an app id (letters, digits, '_' and '-', not starting with '-')",
        _IDENTIFIER,
    ),
    ("gatewayBaseDomain", "gateway_base_domain", "a host name", _HOST_NAME),
    ("sshHost", "ssh_host", "a host name", _HOST_NAME),
)


class StackOutputsError(ConfigError):
    """The stack outputs are missing, unreadable or do not match contract v1."""


def _redacted_repr(record: object) -> str:
    # Secret records show which fields are set (None stays visible, because
    # "no S3 credentials" is useful when debugging) but never the values.
    parts = [
        f"{f.name}={'None' if getattr(record, f.name) is None else '<redacted>'}"
        for f in fields(record)  # type: ignore[arg-type]
    ]
    return f"{type(record).__name__}({', '.join(parts)})"


@dataclass(frozen=True)
class TenantOutputs:
    """Public facts about one tenant's OpenClaw CVM."""

    name: str
    storage_mode: StorageMode
    bucket: str | None
    s3_endpoint: str | None
    s3_region: str | None
    s3_provider: str | None
    s3_prefix: str | None
    openclaw_id: str
    cvm_id: str
    app_id: str
    gateway_base_domain: str
    compose_hash: str
    gateway_url: str
    ssh_host: str
    inbound_url: str
    phala_dashboard_url: str
    # The public fingerprint of the MASTER_KEY the tenant runs with (components/key_change.py);
    # None when the outputs predate it (added within contract v1).
    key_fingerprint: str | None = None


@dataclass(frozen=True, repr=False)
class TenantSecrets:
    """Secret per-tenant outputs; repr never shows a value."""

    gateway_token: str
    dashboard_url: str  # carries #token=<gateway token>, so it is a secret too
    s3_access_key_id: str | None
    s3_secret_access_key: str | None

    def __repr__(self) -> str:
        return _redacted_repr(self)


@dataclass(frozen=True)
class MuxOutputs:
    """Public facts about the shared mux-server CVM."""

    name: str
    cvm_id: str
    app_id: str
    gateway_base_domain: str
    compose_hash: str
    base_url: str
    health_url: str
    phala_dashboard_url: str
    # The chat channels the mux is configured to serve; None when the outputs
    # predate the field (added within contract v1), so nothing can be checked.
    channels: tuple[str, ...] | None = None


@dataclass(frozen=True, repr=False)
class MuxSecrets:
    """mux-server secrets; repr never shows a value."""

    register_key: str
    admin_token: str

    def __repr__(self) -> str:
        return _redacted_repr(self)


@dataclass(frozen=True)
class StackOutputs:
    """The whole v1 contract, validated; mappings are read-only views."""

    contract_version: int
    tenants: Mapping[str, TenantOutputs]
    tenant_secrets: Mapping[str, TenantSecrets]
    mux: MuxOutputs | None
    mux_secrets: MuxSecrets | None

    def tenant(self, name: str) -> TenantOutputs:
        """The named tenant, or an error listing the tenants that do exist."""
        try:
            return self.tenants[name]
        except KeyError:
            raise StackOutputsError(
                f"stack outputs have no tenant {name!r}; known tenants: {self._known_tenants()}"
            ) from None

    def secrets_for(self, name: str) -> TenantSecrets:
        self.tenant(name)  # same "no tenant" error first
        # Parsing guarantees every tenant has a secrets entry.
        return self.tenant_secrets[name]

    def require_mux(self) -> tuple[MuxOutputs, MuxSecrets]:
        if self.mux is None or self.mux_secrets is None:
            raise StackOutputsError(
                "stack outputs 'mux' and 'muxSecrets' are null: this stack deploys no "
                "mux-server, so there is no admin API to mint pairing tokens with"
            )
        return self.mux, self.mux_secrets

    def _known_tenants(self) -> str:
        return ", ".join(sorted(self.tenants)) or "(none)"


# --- parsing -----------------------------------------------------------------

# Field kinds: a required non-empty string, or a string that may be null.
_REQUIRED: Final = "required"
_NULLABLE: Final = "nullable"

# (JSON key, dataclass attribute, kind) for each record type of the contract.
_TENANT_FIELDS: Final = (
    ("name", "name", _REQUIRED),
    ("storageMode", "storage_mode", _REQUIRED),
    ("bucket", "bucket", _NULLABLE),
    ("s3Endpoint", "s3_endpoint", _NULLABLE),
    ("s3Region", "s3_region", _NULLABLE),
    ("s3Provider", "s3_provider", _NULLABLE),
    ("s3Prefix", "s3_prefix", _NULLABLE),
    ("openclawId", "openclaw_id", _REQUIRED),
    ("cvmId", "cvm_id", _REQUIRED),
    ("appId", "app_id", _REQUIRED),
    ("gatewayBaseDomain", "gateway_base_domain", _REQUIRED),
    ("composeHash", "compose_hash", _REQUIRED),
    ("gatewayUrl", "gateway_url", _REQUIRED),
    ("sshHost", "ssh_host", _REQUIRED),
    ("inboundUrl", "inbound_url", _REQUIRED),
    ("phalaDashboardUrl", "phala_dashboard_url", _REQUIRED),
)
_TENANT_SECRET_FIELDS: Final = (
    ("gatewayToken", "gateway_token", _REQUIRED),
    ("dashboardUrl", "dashboard_url", _REQUIRED),
    ("s3AccessKeyId", "s3_access_key_id", _NULLABLE),
    ("s3SecretAccessKey", "s3_secret_access_key", _NULLABLE),
)
_MUX_FIELDS: Final = (
    ("name", "name", _REQUIRED),
    ("cvmId", "cvm_id", _REQUIRED),
    ("appId", "app_id", _REQUIRED),
    ("gatewayBaseDomain", "gateway_base_domain", _REQUIRED),
    ("composeHash", "compose_hash", _REQUIRED),
    ("baseUrl", "base_url", _REQUIRED),
    ("healthUrl", "health_url", _REQUIRED),
    ("phalaDashboardUrl", "phala_dashboard_url", _REQUIRED),
)
# Optional within contract v1: older programs did not export them.
MUX_CHANNELS_KEY: Final = "channels"
KEY_FINGERPRINT_KEY: Final = "keyFingerprint"
KNOWN_CHANNELS: Final = MUX_CHANNEL_NAMES
_MUX_SECRET_FIELDS: Final = (
    ("registerKey", "register_key", _REQUIRED),
    ("adminToken", "admin_token", _REQUIRED),
)
_TOP_LEVEL_KEYS: Final = ("contractVersion", "tenants", "tenantSecrets")
# Pulumi does not export a null output at all: a stack without a mux has neither.
_OPTIONAL_TOP_LEVEL_KEYS: Final = ("mux", "muxSecrets")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _misnamed_hint(missing: str, present: Mapping[str, Any], expected: tuple[str, ...]) -> str:
    # Only keys the contract does not define can be a misspelling of `missing`.
    strays = [key for key in present if isinstance(key, str) and key not in expected]
    close = difflib.get_close_matches(missing, strays, n=1, cutoff=0.6)
    if not close:
        close = [key for key in strays if key.lower() == missing.lower()]
    return f" (found {close[0]!r}: misnamed?)" if close else ""


def _require_object(value: object, where: str, *, secret: bool = False) -> Mapping[str, Any]:
    if isinstance(value, dict):
        return value
    if secret and value == PULUMI_SECRET_PLACEHOLDER:
        raise StackOutputsError(
            f"stack output {where!r} is {PULUMI_SECRET_PLACEHOLDER!r}: the outputs were "
            "exported without --show-secrets"
        )
    raise StackOutputsError(f"stack output {where!r} must be an object, got {_json_type(value)}")


def _parse_record(
    value: object,
    where: str,
    spec: tuple[tuple[str, str, str], ...],
    *,
    secret: bool,
) -> dict[str, str | None]:
    record = _require_object(value, where, secret=secret)
    expected = tuple(key for key, _, _ in spec)
    parsed: dict[str, str | None] = {}
    for key, attribute, kind in spec:
        if key not in record:
            hint = _misnamed_hint(key, record, expected)
            raise StackOutputsError(f"stack output {where!r} is missing {key!r}{hint}")
        field_value = record[key]
        if field_value is None and kind == _NULLABLE:
            parsed[attribute] = None
            continue
        if not isinstance(field_value, str) or not field_value:
            wanted = "a non-empty string" + (" or null" if kind == _NULLABLE else "")
            # Only the JSON type is named: the value may be a secret.
            got = "an empty string" if field_value == "" else _json_type(field_value)
            raise StackOutputsError(f"stack output '{where}.{key}' must be {wanted}, got {got}")
        parsed[attribute] = field_value
    for key, attribute, wanted, pattern in _CHECKED_VALUES:
        value = parsed.get(attribute)
        if value is not None and not pattern.fullmatch(value):
            shown = value if len(value) <= 60 else value[:60] + "..."
            raise StackOutputsError(f"stack output '{where}.{key}' must be {wanted}, got {shown!r}")
    return parsed


def _required(parsed: Mapping[str, str | None], attribute: str) -> str:
    """A field _parse_record checked as required: a non-empty string."""
    value = parsed[attribute]
    assert value is not None  # _parse_record refuses a null required field
    return value


def _parse_tenant(name: str, value: object) -> TenantOutputs:
    where = f"tenants.{name}"
    parsed = _parse_record(value, where, _TENANT_FIELDS, secret=False)
    if parsed["name"] != name:
        raise StackOutputsError(
            f"stack output '{where}.name' is {parsed['name']!r}, but the tenant is keyed {name!r}"
        )
    if parsed["storage_mode"] not in STORAGE_MODES:
        raise StackOutputsError(
            f"stack output '{where}.storageMode' must be 's3' or 'local', "
            f"got {parsed['storage_mode']!r}"
        )
    if parsed["storage_mode"] == "s3":
        for key, attribute in (("bucket", "bucket"), ("s3Endpoint", "s3_endpoint")):
            if parsed[attribute] is None:
                raise StackOutputsError(
                    f"stack output '{where}.{key}' is null, but storageMode is 's3'"
                )
    fingerprint = value.get(KEY_FINGERPRINT_KEY) if isinstance(value, dict) else None
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise StackOutputsError(
            f"stack output '{where}.{KEY_FINGERPRINT_KEY}' must be a string, "
            f"got {_json_type(fingerprint)}"
        )
    return TenantOutputs(**parsed, key_fingerprint=fingerprint)  # type: ignore[arg-type]


def _parse_tenant_secrets(name: str, value: object, tenant: TenantOutputs) -> TenantSecrets:
    where = f"tenantSecrets.{name}"
    parsed = _parse_record(value, where, _TENANT_SECRET_FIELDS, secret=True)
    if tenant.storage_mode == "s3":
        for key, attribute in (
            ("s3AccessKeyId", "s3_access_key_id"),
            ("s3SecretAccessKey", "s3_secret_access_key"),
        ):
            if parsed[attribute] is None:
                raise StackOutputsError(
                    f"stack output '{where}.{key}' is null, but tenant {name!r} uses S3 storage"
                )
    return TenantSecrets(**parsed)  # type: ignore[arg-type]


def _parse_mux_channels(record: Mapping[str, Any]) -> tuple[str, ...] | None:
    """``mux.channels``: a list of distinct known channel names, or absent (older outputs)."""
    if MUX_CHANNELS_KEY not in record:
        return None
    value = record[MUX_CHANNELS_KEY]
    where = f"mux.{MUX_CHANNELS_KEY}"
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise StackOutputsError(
            f"stack output {where!r} must be a list of channel names, got {_json_type(value)}"
        )
    for item in value:
        if item not in KNOWN_CHANNELS:
            raise StackOutputsError(
                f"stack output {where!r} lists unknown channel {item!r} "
                f"(known: {', '.join(KNOWN_CHANNELS)})"
            )
    if len(set(value)) != len(value):
        raise StackOutputsError(f"stack output {where!r} lists a channel twice")
    return tuple(value)


def _parse_mux(value: object) -> MuxOutputs:
    parsed = _parse_record(value, "mux", _MUX_FIELDS, secret=False)
    # _parse_record checked that value is an object.
    channels = _parse_mux_channels(value)  # type: ignore[arg-type]
    return MuxOutputs(**parsed, channels=channels)  # type: ignore[arg-type]


def _parse_contract_version(document: Mapping[str, Any]) -> int:
    version = document["contractVersion"]
    # Pulumi stores numbers as doubles, so 1.0 is version 1; bool is an int
    # subclass, and `true` is not a version.
    if isinstance(version, float) and version.is_integer():
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool):
        raise StackOutputsError(
            f"stack output 'contractVersion' must be a whole number, got {_json_type(version)}"
        )
    if version != CONTRACT_VERSION:
        raise StackOutputsError(
            f"stack outputs use contractVersion {version}, but this ops CLI reads only "
            f"version {CONTRACT_VERSION}; use the ops CLI from the same commit as the program"
        )
    return version


def parse_stack_outputs(document: object) -> StackOutputs:
    """Validate a decoded outputs document against contract v1."""
    top = _require_object(document, "<stack outputs>")
    for key in _TOP_LEVEL_KEYS:
        if key not in top:
            hint = _misnamed_hint(key, top, _TOP_LEVEL_KEYS)
            raise StackOutputsError(
                f"stack outputs have no {key!r} output{hint}; is this stack deployed by "
                "the openclaw-phala program?"
            )
    version = _parse_contract_version(top)

    raw_tenants = _require_object(top["tenants"], "tenants")
    tenants = {name: _parse_tenant(name, value) for name, value in raw_tenants.items()}

    raw_secrets = _require_object(top["tenantSecrets"], "tenantSecrets", secret=True)
    for name in raw_secrets:
        if name not in tenants:
            raise StackOutputsError(
                f"stack output 'tenantSecrets' has an entry for {name!r}, which is not in "
                f"'tenants' (known tenants: {', '.join(sorted(tenants)) or '(none)'})"
            )
    tenant_secrets: dict[str, TenantSecrets] = {}
    for name, tenant in tenants.items():
        if name not in raw_secrets:
            raise StackOutputsError(
                f"stack output 'tenantSecrets' has no entry for tenant {name!r}"
            )
        tenant_secrets[name] = _parse_tenant_secrets(name, raw_secrets[name], tenant)

    # mux and muxSecrets come and go together: a stack either runs the shared
    # mux-server or it does not.
    raw_mux, raw_mux_secrets = top.get("mux"), top.get("muxSecrets")
    if (raw_mux is None) != (raw_mux_secrets is None):
        present, absent = ("mux", "muxSecrets") if raw_mux is not None else ("muxSecrets", "mux")
        raise StackOutputsError(
            f"stack output {present!r} is set but {absent!r} is null; both or neither"
        )
    mux = None if raw_mux is None else _parse_mux(raw_mux)
    mux_secrets = None
    if raw_mux_secrets is not None:
        record = _parse_record(raw_mux_secrets, "muxSecrets", _MUX_SECRET_FIELDS, secret=True)
        mux_secrets = MuxSecrets(
            register_key=_required(record, "register_key"),
            admin_token=_required(record, "admin_token"),
        )

    return StackOutputs(
        contract_version=version,
        tenants=MappingProxyType(tenants),
        tenant_secrets=MappingProxyType(tenant_secrets),
        mux=mux,
        mux_secrets=mux_secrets,
    )


def _decode_json(text: str, source: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        # error.msg/lineno/colno only: str(error) is fine too, but the document
        # itself (which holds secrets) must never be quoted back.
        raise StackOutputsError(
            f"{source} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None


def load_stack_outputs_file(path: Path) -> StackOutputs:
    """Outputs from a JSON file, e.g. saved ``pulumi stack output --json --show-secrets``."""
    text = read_utf8_file(
        path, "stack outputs file", StackOutputsError, max_bytes=MAX_OUTPUTS_FILE_BYTES
    )
    return parse_stack_outputs(_decode_json(text, f"stack outputs file {str(path)!r}"))


def pulumi_stack_output_command(stack: str | None, pulumi_binary: str = "pulumi") -> list[str]:
    command = [pulumi_binary, "stack", "output", "--json", "--show-secrets", "--non-interactive"]
    if stack:
        command += ["--stack", stack]
    return command


def load_stack_outputs_from_pulumi(
    stack: str | None,
    *,
    pulumi_binary: str = "pulumi",
    cwd: Path = PROJECT_ROOT,
    timeout_sec: float = PULUMI_TIMEOUT_SEC,
) -> StackOutputs:
    """Outputs of the selected (or named) stack, read through the Pulumi CLI."""
    command = pulumi_stack_output_command(stack, pulumi_binary)
    stack_label = f"stack {stack!r}" if stack else "the selected stack"
    try:
        completed = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout_sec,
            check=False,
        )
    except FileNotFoundError:
        raise StackOutputsError(
            f"the Pulumi CLI ({pulumi_binary!r}) is not on PATH; install it or pass "
            "--outputs FILE with saved 'pulumi stack output --json --show-secrets'"
        ) from None
    except subprocess.TimeoutExpired:
        raise StackOutputsError(
            f"'pulumi stack output' for {stack_label} did not finish within {timeout_sec:g} s"
        ) from None
    if completed.returncode != 0:
        # Pulumi's own last stderr line says what went wrong (no such stack,
        # not logged in...); stdout is not shown because it may hold secrets.
        lines = [line.strip() for line in completed.stderr.splitlines() if line.strip()]
        reason = lines[-1][:300] if lines else "no error message"
        raise StackOutputsError(
            f"'pulumi stack output' for {stack_label} failed (exit {completed.returncode}): "
            f"{reason}"
        )
    return parse_stack_outputs(_decode_json(completed.stdout, f"pulumi output for {stack_label}"))

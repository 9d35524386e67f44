"""Raw stack config into Settings: every check, every problem found in one pass.

Everything the program reads from `pulumi config` goes through `parse_settings`, which
collects every problem it finds and reports them together, each naming the config key
the operator has to fix (the tenants are parsed in components/tenant_config.py, single
values checked in components/config_values.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from components import config_checks, mux_jwt_key
from components.config_keys import (
    MAX_DISK_SIZE_GB,
    MAX_SECRET_LENGTH,
    MAX_WAIT_TIMEOUT_SECONDS,
    MIN_DISK_SIZE_GB,
    MIN_MASTER_KEY_LENGTH,
    MIN_WAIT_TIMEOUT_SECONDS,
    OBJECT_KEYS,
    SCALAR_KEYS,
    TENANT_SECRETS_KEY,
    MuxChannel,
    ScalarKey,
)
from components.config_values import (
    ACCOUNT_ID,
    STACK_NAME,
    TELEGRAM_USERNAME,
    check_cvm_id,
    check_cvm_name,
    check_instance_type,
    check_os_image,
    check_pinned_image,
    check_region,
    check_ssh_public_key,
    go_integer,
)
from components.secret_value import SecretValue
from components.settings import (
    CloudflareSettings,
    ConfigProblem,
    EmptyConfigError,
    ImageSettings,
    MuxSecrets,
    MuxSettings,
    PhalaSettings,
    Problems,
    RawConfig,
    Settings,
    SettingsError,
)
from components.tenant_config import ParsedTenants, tenant_settings, unknown_key_message

SECRET_KEY_NAMES = frozenset({key.name for key in SCALAR_KEYS if key.secret} | {TENANT_SECRETS_KEY})
KNOWN_KEY_NAMES = frozenset({key.name for key in SCALAR_KEYS} | set(OBJECT_KEYS))
_MUX_SECRET_KEYS = (
    "muxMasterKey",
    "muxRegisterKey",
    "muxAdminToken",
    "muxJwtPrivateKey",
    "muxTelegramBotToken",
    "muxDiscordBotToken",
)
# What a mux deployed here is made of: each means nothing without muxName.
_MUX_SETTINGS = ("muxImage", "muxInstanceType", "muxChannels", "muxCvmId", "muxTelegramBotUsername")
_MUX_OPT_INS = ("muxAllowDataLoss", "muxAllowKeyChange")


def parse_settings(raw: RawConfig) -> Settings:
    """Validate the whole config; raise SettingsError listing every problem."""
    if _sets_nothing(raw):
        raise EmptyConfigError()
    problems = Problems(opaque=_hidden_structure(raw))
    for key, message in raw.misplaced:
        problems.items.append(ConfigProblem(key, message, in_project=False))
    problems.items.extend(raw.file_problems)
    problems.warnings.extend(raw.foreign_warnings)
    for key in sorted(set(raw.values) - KNOWN_KEY_NAMES):
        problems.add(key, unknown_key_message("config key", key, KNOWN_KEY_NAMES))
    _check_structure_is_plain(raw, problems)
    scalars = {key.name: _read_scalar(raw, key, problems) for key in SCALAR_KEYS}

    phala = _phala_settings(scalars, problems)
    cloudflare = CloudflareSettings(account_id=_optional(scalars["cloudflareAccountId"]))
    if cloudflare.account_id is not None and not ACCOUNT_ID.fullmatch(cloudflare.account_id):
        problems.add("cloudflareAccountId", "must be the 32-character hex Cloudflare account id")

    images = ImageSettings(
        openclaw=_optional(scalars["openclawImage"]), mux=_optional(scalars["muxImage"])
    )
    for key, image in (("openclawImage", images.openclaw), ("muxImage", images.mux)):
        reason = check_pinned_image(image) if image is not None else None
        if reason is not None:
            problems.add(key, reason)

    shared_redpill = _optional(scalars["redpillApiKey"])
    parsed = tenant_settings(raw, shared_redpill, phala.instance_type, problems)
    tenants = parsed.valid
    mux_stack = _optional(scalars["muxStack"])
    mux = _mux_settings(raw, scalars, phala, mux_stack, problems)
    if mux_stack is not None and not STACK_NAME.fullmatch(mux_stack):
        problems.add(
            "muxStack",
            "must name a stack: <stack>, <project>/<stack> or <org>/<proj>/<stack> "
            "(each part at most 100 letters, digits, '.', '_', '-', starting with a letter "
            "or digit)",
        )
    if mux is not None and mux_stack is not None:
        problems.add("muxStack", "cannot be combined with muxName: deploy a mux or reference one")

    _check_cross_references(parsed, mux, images, cloudflare, problems)
    if problems.items:
        raise SettingsError(problems.items)
    return Settings(
        cloudflare=cloudflare,
        images=images,
        phala=phala,
        mux=mux,
        mux_stack=mux_stack,
        tenants=tuple(tenants),
        allow_tenant_removal=tuple(scalars["allowTenantRemoval"]),
        warnings=tuple(problems.warnings),
    )


def _top_key(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _hidden_structure(raw: RawConfig) -> frozenset[str]:
    """Paths of structure the stack file stores encrypted: the offline plan sees only a
    stand-in there, so checks of those values are dropped (the value's own problem is
    reported by _check_structure_is_plain)."""
    return frozenset(p for p in raw.encrypted_paths if _top_key(p) not in SECRET_KEY_NAMES)


def _is_default(key: ScalarKey, text: str) -> bool:
    if key.type == "array":
        try:
            return bool(json.loads(text) == key.default)
        except (json.JSONDecodeError, RecursionError):
            return False
    if key.type == "boolean":
        return text.lower() == str(key.default).lower()
    return text == str(key.default)


def _sets_nothing(raw: RawConfig) -> bool:
    """Nothing set beyond Pulumi.yaml's defaults (which the engine hands over as values)."""
    if raw.misplaced or raw.file_problems or set(raw.values) & set(OBJECT_KEYS):
        return False
    declared = {key.name: key for key in SCALAR_KEYS}
    return all(
        key in declared and _is_default(declared[key], text) for key, text in raw.values.items()
    )


def _is_set(raw: RawConfig, name: str) -> bool:
    """The key holds something other than its default."""
    text = raw.values.get(name)
    key = next(key for key in SCALAR_KEYS if key.name == name)
    return text is not None and not _is_default(key, text)


def _check_structure_is_plain(raw: RawConfig, problems: Problems) -> None:
    """Names, modes and ids must be plain: a secret one is a placeholder in the plan (a new
    ciphertext of the same name would read as a deleted mux or tenant) and appears in
    plaintext in resource names under the engine anyway."""
    for key in sorted(raw.secret_keys - SECRET_KEY_NAMES):
        if key not in KNOWN_KEY_NAMES:
            continue
        paths = sorted(p for p in raw.encrypted_paths if _top_key(p) == key)
        for path in paths or [key]:
            how = f"--path '{path}'" if path != key else key
            problems.items.append(
                ConfigProblem(
                    path,
                    "must be plain, not a secret: it names or shapes what is deployed, which "
                    "shows in resource names, diffs and the offline plan; set it with: "
                    f"pulumi config set {how} <value>",
                )
            )


def _read_scalar(raw: RawConfig, key: ScalarKey, problems: Problems) -> Any:
    text = raw.values.get(key.name)
    if text is None:
        return key.default
    if key.secret and text != "" and key.name not in raw.secret_keys:
        problems.add(
            key.name,
            f"holds a secret in plaintext; set it with: pulumi config set --secret {key.name}",
        )
    if key.secret and len(text) > MAX_SECRET_LENGTH:
        problems.add(key.name, f"is {len(text)} characters long; at most {MAX_SECRET_LENGTH}")
        return key.default
    if key.type == "string":
        return text
    if key.type == "boolean":
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        problems.add(key.name, "must be true or false")
        return key.default
    if key.type == "integer":
        number = go_integer(text)
        if number is not None:
            return number
        problems.add(key.name, "must be a whole number (optionally signed, decimal digits)")
        return key.default
    # array of strings
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(key.name, 'must be a list of strings, e.g. ["telegram"]')
        return key.default
    return value


def _optional(text: str) -> str | None:
    return text if text != "" else None


def _phala_settings(scalars: Mapping[str, Any], problems: Problems) -> PhalaSettings:
    instance_type = scalars["phalaInstanceType"]
    reason = check_instance_type(instance_type)
    if reason is not None:
        problems.add("phalaInstanceType", reason)
    ssh_key = _optional(scalars["phalaSshPublicKey"].strip())
    if scalars["phalaDevOs"] and ssh_key is None:
        problems.add(
            "phalaSshPublicKey",
            "is required when phalaDevOs is true (the dev OS is for SSH access); "
            "set it, or set phalaDevOs to false",
        )
    reason = check_ssh_public_key(ssh_key) if ssh_key is not None else None
    if reason is not None:
        problems.add("phalaSshPublicKey", reason)
    timeout = scalars["phalaWaitTimeoutSeconds"]
    if not MIN_WAIT_TIMEOUT_SECONDS <= timeout <= MAX_WAIT_TIMEOUT_SECONDS:
        problems.add(
            "phalaWaitTimeoutSeconds",
            f"must be between {MIN_WAIT_TIMEOUT_SECONDS} and {MAX_WAIT_TIMEOUT_SECONDS} seconds",
        )
    disk = scalars["phalaDiskSizeGb"]
    if not MIN_DISK_SIZE_GB <= disk <= MAX_DISK_SIZE_GB:
        problems.add(
            "phalaDiskSizeGb", f"must be between {MIN_DISK_SIZE_GB} and {MAX_DISK_SIZE_GB} GB"
        )
    region = _optional(scalars["phalaRegion"])
    reason = check_region(region) if region is not None else None
    if reason is not None:
        problems.add("phalaRegion", reason)
    os_image = _optional(scalars["phalaOsImage"])
    reason = check_os_image(os_image) if os_image is not None else None
    if reason is not None:
        problems.add("phalaOsImage", reason)
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


def _without_mux(
    raw: RawConfig,
    scalars: Mapping[str, Any],
    secret: Mapping[str, SecretValue | None],
    mux_stack: str | None,
    problems: Problems,
) -> None:
    """Mux settings while muxName is empty: nothing reads them, so each is named."""
    elsewhere = " (the mux of muxStack is configured in its own stack)" if mux_stack else ""
    for key, value in secret.items():
        if value is not None:
            problems.add(key, f"is set but muxName is empty, so no mux is deployed{elsewhere}")
    for key in _MUX_SETTINGS:
        if _is_set(raw, key):
            problems.add(
                key,
                "is set but muxName is empty, so no mux is deployed here and nothing reads it; "
                f"remove it, or set muxName{elsewhere}",
            )
    for key in _MUX_OPT_INS:
        if scalars[key]:
            problems.warn(key, "is true but muxName is empty, so it applies to nothing; remove it")


def _mux_settings(
    raw: RawConfig,
    scalars: Mapping[str, Any],
    phala: PhalaSettings,
    mux_stack: str | None,
    problems: Problems,
) -> MuxSettings | None:
    name = _optional(scalars["muxName"])
    secret = {
        key: (SecretValue(scalars[key]) if scalars[key] else None) for key in _MUX_SECRET_KEYS
    }
    if name is None:
        _without_mux(raw, scalars, secret, mux_stack, problems)
        return None

    reason = check_cvm_name(name)
    if reason is not None:
        problems.add("muxName", f"'{name}' is not a valid CVM name: {reason}")
    own_instance_type = _optional(scalars["muxInstanceType"])
    instance_type = own_instance_type or phala.instance_type
    if own_instance_type is not None:  # an inherited one is reported as phalaInstanceType
        reason = check_instance_type(instance_type)
        if reason is not None:
            problems.add("muxInstanceType", reason)

    channels: list[MuxChannel] = []
    for value in scalars["muxChannels"]:
        if value not in (channel.value for channel in MuxChannel):
            problems.add("muxChannels", f"unknown channel '{value}' (telegram, discord, whatsapp)")
            continue
        channel = MuxChannel(value)
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

    master_key = secret["muxMasterKey"]
    if master_key is None:
        for key in ("muxRegisterKey", "muxAdminToken"):
            if secret[key] is None:
                problems.add(key, "is required unless muxMasterKey is set to derive it")
    elif len(master_key) < MIN_MASTER_KEY_LENGTH:
        problems.add("muxMasterKey", f"is too short (at least {MIN_MASTER_KEY_LENGTH} characters)")
    jwt_key = secret["muxJwtPrivateKey"]
    # A key the mux could not load would stop it at boot: refused here, at preview.
    jwt_key_problem = mux_jwt_key.problem(jwt_key.reveal()) if jwt_key is not None else None
    if jwt_key_problem is not None:
        problems.add("muxJwtPrivateKey", jwt_key_problem)

    username = _optional(scalars["muxTelegramBotUsername"])
    if username is not None and not TELEGRAM_USERNAME.fullmatch(username.lstrip("@")):
        problems.add(
            "muxTelegramBotUsername",
            "must be a Telegram bot username such as my_bot (5 to 32 letters, digits, '_')",
        )

    cvm_id = _optional(scalars["muxCvmId"])
    reason = check_cvm_id(cvm_id) if cvm_id is not None else None
    if reason is not None:
        problems.add("muxCvmId", reason)

    return MuxSettings(
        name=name,
        instance_type=instance_type,
        channels=tuple(channels),
        existing_cvm_id=cvm_id,
        telegram_bot_username=username.lstrip("@") if username else None,
        allow_data_loss=scalars["muxAllowDataLoss"],
        allow_key_change=scalars["muxAllowKeyChange"],
        secrets=MuxSecrets(
            master_key=master_key,
            register_key=secret["muxRegisterKey"],
            admin_token=secret["muxAdminToken"],
            jwt_private_key=jwt_key,
            telegram_bot_token=secret["muxTelegramBotToken"],
            discord_bot_token=secret["muxDiscordBotToken"],
        ),
    )


def _check_cross_references(
    parsed: ParsedTenants,
    mux: MuxSettings | None,
    images: ImageSettings,
    cloudflare: CloudflareSettings,
    problems: Problems,
) -> None:
    tenants = parsed.valid
    if parsed.declared and images.openclaw is None:
        problems.add("openclawImage", "is required: the stack has tenants to deploy")
    if mux is not None and images.mux is None:
        problems.add("muxImage", "is required because muxName is set")
    if parsed.s3_names and cloudflare.account_id is None:
        names = ", ".join(parsed.s3_names)
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

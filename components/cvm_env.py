"""The env vars each kind of CVM receives (encrypted by `phala` before upload).

Pure: values may be Pulumi Outputs, but nothing here creates resources. Every
name in `secret_names` must be given as a secret Output by the caller; the
driver also scrubs those values from anything it prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from components import mux_jwt_key, r2


@dataclass(frozen=True)
class CvmEnv:
    """Env vars for a CVM, in the order they are written."""

    values: Mapping[str, pulumi.Input[str]]
    secret_names: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class S3Credentials:
    bucket: pulumi.Input[str]
    prefix: str
    endpoint: str
    access_key_id: pulumi.Input[str]  # secret
    secret_access_key: pulumi.Input[str]  # secret


TENANT_SECRET_NAMES = frozenset(
    {"MASTER_KEY", "REDPILL_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
)
# The bootstrap config embeds the gateway token and the mux register key.
OPENCLAW_CONFIG_NAME = "OPENCLAW_CONFIG_B64"


def tenant_env(
    master_key: pulumi.Input[str],
    redpill_api_key: pulumi.Input[str],
    s3: S3Credentials | None,
    openclaw_config_b64: pulumi.Input[str] | None,
) -> CvmEnv:
    """MASTER_KEY and REDPILL_API_KEY always; the S3 settings in s3 mode (without
    S3_BUCKET the image keeps state on its local volume); the mux bootstrap config
    when the tenant joins a mux."""
    values: dict[str, pulumi.Input[str]] = {
        "MASTER_KEY": master_key,
        "REDPILL_API_KEY": redpill_api_key,
    }
    if s3 is not None:
        values |= {
            "S3_BUCKET": s3.bucket,
            "S3_PREFIX": s3.prefix,
            "S3_ENDPOINT": s3.endpoint,
            "S3_PROVIDER": r2.S3_PROVIDER,
            "S3_REGION": r2.S3_REGION,
            "AWS_ACCESS_KEY_ID": s3.access_key_id,
            "AWS_SECRET_ACCESS_KEY": s3.secret_access_key,
        }
    secret_names = set(TENANT_SECRET_NAMES & values.keys())
    if openclaw_config_b64 is not None:
        values[OPENCLAW_CONFIG_NAME] = openclaw_config_b64
        secret_names.add(OPENCLAW_CONFIG_NAME)
    return CvmEnv(values=values, secret_names=frozenset(secret_names))


def mux_env(
    register_key: pulumi.Input[str],
    admin_token: pulumi.Input[str],
    jwt_private_key_b64: pulumi.Input[str] | None,
    telegram_bot_token: pulumi.Input[str] | None,
    discord_bot_token: pulumi.Input[str] | None,
    telegram_bot_username: str | None,
) -> CvmEnv:
    """The JWT key travels as MUX_JWT_PRIVATE_KEY_B64, its PEM base64-encoded on one
    line: dstack would hand a multi-line value to the container with literal
    backslash-n for its line breaks (driver/dstack_env.py), and the mux could not read
    that. compose/mux.yml decodes it into MUX_JWT_PRIVATE_KEY before the mux starts
    (components/mux_jwt_key.py). Without it the mux makes a new key at each boot."""
    values: dict[str, pulumi.Input[str]] = {
        "MUX_REGISTER_KEY": register_key,
        "MUX_ADMIN_TOKEN": admin_token,
    }
    optional: dict[str, pulumi.Input[str] | None] = {
        mux_jwt_key.ENV_NAME: jwt_private_key_b64,
        "TELEGRAM_BOT_TOKEN": telegram_bot_token,
        "DISCORD_BOT_TOKEN": discord_bot_token,
    }
    values |= {name: value for name, value in optional.items() if value is not None}
    secret_names = frozenset(values)
    if telegram_bot_username is not None:
        values["MUX_TELEGRAM_BOT_USERNAME"] = telegram_bot_username
    return CvmEnv(values=values, secret_names=secret_names)

"""Config parsing and validation, without the Pulumi runtime."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from components.config_keys import SCALAR_KEYS, StorageMode
from components.config_parser import parse_settings
from components.config_values import check_cvm_name, check_r2_bucket_name
from components.settings import RawConfig, SettingsError, read_raw_config
from tests.support.stack_configs import (
    ACCOUNT_ID,
    IMAGE,
    MUX_IMAGE,
    MUX_MASTER_KEY,
    REDPILL_KEY,
    SSH_KEY,
    TELEGRAM_TOKEN,
    master_key_for,
)

GOOD_KEY = master_key_for("alice-agent")


def raw(config: dict[str, Any], secret: set[str] | None = None) -> RawConfig:
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    if secret is None:
        secret = {"tenantSecrets", "redpillApiKey", "muxMasterKey", "muxTelegramBotToken"}
    return RawConfig(values=values, secret_keys=frozenset(secret & set(values)))


def good_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "cloudflareAccountId": ACCOUNT_ID,
        "openclawImage": IMAGE,
        "phalaSshPublicKey": SSH_KEY,
        "redpillApiKey": REDPILL_KEY,
        "tenants": [{"name": "alice-agent"}],
        "tenantSecrets": {"alice-agent": {"masterKey": GOOD_KEY}},
    }
    config.update(overrides)
    return config


def mux_config(**overrides: Any) -> dict[str, Any]:
    mux: dict[str, Any] = {
        "muxName": "openclaw-mux",
        "muxImage": MUX_IMAGE,
        "muxChannels": ["telegram"],
        "muxMasterKey": MUX_MASTER_KEY,
        "muxTelegramBotToken": TELEGRAM_TOKEN,
    }
    return good_config(**(mux | overrides))


def problems_of(config: dict[str, Any], secret: set[str] | None = None) -> list[str]:
    with pytest.raises(SettingsError) as info:
        parse_settings(raw(config, secret))
    return [str(p) for p in info.value.problems]


def test_good_config_parses_with_defaults() -> None:
    settings = parse_settings(raw(good_config()))
    (tenant,) = settings.tenants
    assert tenant.name == "alice-agent"
    assert tenant.storage_mode is StorageMode.S3
    assert tenant.r2 is not None
    assert (tenant.r2.bucket, tenant.r2.jurisdiction, tenant.r2.s3_prefix) == (
        "openclaw-alice-agent",
        "default",
        "openclaw-data",
    )
    assert tenant.instance_type == "tdx.medium"
    assert tenant.master_key.reveal() == GOOD_KEY
    assert tenant.redpill_api_key.reveal() == REDPILL_KEY
    assert settings.phala.dev_os is True
    assert settings.phala.wait_timeout_seconds == 600
    assert settings.mux is None


def test_per_tenant_redpill_key_overrides_the_shared_one() -> None:
    config = good_config(
        tenantSecrets={"alice-agent": {"masterKey": GOOD_KEY, "redpillApiKey": "rp-own"}}
    )
    (tenant,) = parse_settings(raw(config)).tenants
    assert tenant.redpill_api_key.reveal() == "rp-own"


def test_settings_repr_never_shows_secrets() -> None:
    settings = parse_settings(raw(mux_config()))
    text = repr(settings)
    for secret in (GOOD_KEY, REDPILL_KEY, MUX_MASTER_KEY, TELEGRAM_TOKEN):
        assert secret not in text


def _pem() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


# Each row: a bad config, the key the message must name, and words it must contain.
BAD_INPUTS: list[tuple[str, dict[str, Any], set[str] | None, str, str]] = [
    (
        "master key missing",
        good_config(tenantSecrets={}),
        None,
        "tenantSecrets.alice-agent.masterKey",
        "missing",
    ),
    (
        "master key shorter than 32 characters",
        good_config(tenantSecrets={"alice-agent": {"masterKey": "x" * 31}}),
        None,
        "tenantSecrets.alice-agent.masterKey",
        "too short",
    ),
    (
        "master key with trailing whitespace",
        good_config(tenantSecrets={"alice-agent": {"masterKey": GOOD_KEY + " "}}),
        None,
        "tenantSecrets.alice-agent.masterKey",
        "whitespace",
    ),
    (
        "master key with a leading byte-order mark",
        good_config(tenantSecrets={"alice-agent": {"masterKey": "\ufeff" + GOOD_KEY}}),
        None,
        "tenantSecrets.alice-agent.masterKey",
        "whitespace",
    ),
    (
        "CVM name too short",
        good_config(tenants=[{"name": "abcd"}]),
        None,
        "tenants[0].name",
        "5 to 63",
    ),
    (
        "CVM name too long",
        good_config(tenants=[{"name": "a" * 64}]),
        None,
        "tenants[0].name",
        "5 to 63",
    ),
    (
        "CVM name starting with a digit",
        good_config(tenants=[{"name": "1agent"}]),
        None,
        "tenants[0].name",
        "start with a letter",
    ),
    (
        "CVM name with a double hyphen",
        good_config(tenants=[{"name": "agent--one"}]),
        None,
        "tenants[0].name",
        "single hyphens",
    ),
    (
        "CVM name with a trailing hyphen",
        good_config(tenants=[{"name": "agent-one-"}]),
        None,
        "tenants[0].name",
        "must not end with a hyphen",
    ),
    (
        "CVM name with an underscore",
        good_config(tenants=[{"name": "agent_one"}]),
        None,
        "tenants[0].name",
        "letters, digits and single hyphens",
    ),
    ("tenant without a name", good_config(tenants=[{}]), None, "tenants[0].name", "required"),
    (
        "duplicate tenant names",
        good_config(
            tenants=[{"name": "alice-agent"}, {"name": "Alice-Agent", "bucket": "other-bucket"}],
            tenantSecrets={
                "alice-agent": {"masterKey": GOOD_KEY},
                "Alice-Agent": {"masterKey": GOOD_KEY},
            },
        ),
        None,
        "tenants[1].name",
        "duplicate",
    ),
    (
        "image pinned by tag",
        good_config(openclawImage="h4x3rotab/openclaw-cvm:latest"),
        None,
        "openclawImage",
        "sha256",
    ),
    (
        "image with tag and digest",
        good_config(openclawImage="h4x3rotab/openclaw-cvm:v1@sha256:" + "a" * 64),
        None,
        "openclawImage",
        "sha256",
    ),
    (
        "image digest too short",
        good_config(openclawImage="h4x3rotab/openclaw-cvm@sha256:" + "a" * 63),
        None,
        "openclawImage",
        "sha256",
    ),
    (
        "mux image not pinned",
        mux_config(muxImage="h4x3rotab/openclaw-mux"),
        None,
        "muxImage",
        "sha256",
    ),
    ("openclaw image missing", good_config(openclawImage=""), None, "openclawImage", "required"),
    (
        "s3 mode without a Cloudflare account id",
        good_config(cloudflareAccountId=""),
        None,
        "cloudflareAccountId",
        "alice-agent",
    ),
    (
        "Cloudflare account id not hex",
        good_config(cloudflareAccountId="not-an-account"),
        None,
        "cloudflareAccountId",
        "32-character hex",
    ),
    (
        "bucket with uppercase letters",
        good_config(tenants=[{"name": "alice-agent", "bucket": "Alice-Bucket"}]),
        None,
        "tenants[0].bucket",
        "lowercase",
    ),
    (
        "bucket too short",
        good_config(tenants=[{"name": "alice-agent", "bucket": "ab"}]),
        None,
        "tenants[0].bucket",
        "3 to 63",
    ),
    (
        "bucket ending with a hyphen",
        good_config(tenants=[{"name": "alice-agent", "bucket": "alice-"}]),
        None,
        "tenants[0].bucket",
        "start and end",
    ),
    (
        "derived bucket name too long",
        good_config(
            tenants=[{"name": "a" * 60}],
            tenantSecrets={"a" * 60: {"masterKey": GOOD_KEY}},
        ),
        None,
        "tenants[0].bucket",
        "set bucket explicitly",
    ),
    (
        "two tenants sharing a bucket",
        good_config(
            tenants=[
                {"name": "alice-agent", "bucket": "shared-bucket"},
                {"name": "bob-agent", "bucket": "shared-bucket"},
            ],
            tenantSecrets={
                "alice-agent": {"masterKey": GOOD_KEY},
                "bob-agent": {"masterKey": GOOD_KEY},
            },
        ),
        None,
        "tenants[1].bucket",
        "already used by tenant alice-agent",
    ),
    (
        "unknown jurisdiction",
        good_config(tenants=[{"name": "alice-agent", "jurisdiction": "mars"}]),
        None,
        "tenants[0].jurisdiction",
        "default, eu, fedramp",
    ),
    (
        "s3 prefix with a leading slash",
        good_config(tenants=[{"name": "alice-agent", "s3Prefix": "/data"}]),
        None,
        "tenants[0].s3Prefix",
        "relative",
    ),
    (
        "typo in a tenant field",
        good_config(tenants=[{"name": "alice-agent", "bukket": "x"}]),
        None,
        "tenants[0].bukket",
        "did you mean 'bucket'",
    ),
    (
        "unknown tenant storage mode",
        good_config(tenants=[{"name": "alice-agent", "storage": "nfs"}]),
        None,
        "tenants[0].storage",
        "'s3' or 'local'",
    ),
    (
        "bucket set on a local tenant",
        good_config(tenants=[{"name": "alice-agent", "storage": "local", "bucket": "b-bucket"}]),
        None,
        "tenants[0].bucket",
        "only to storage 's3'",
    ),
    (
        "allowDataLoss on an s3 tenant",
        good_config(tenants=[{"name": "alice-agent", "allowDataLoss": True}]),
        None,
        "tenants[0].allowDataLoss",
        "only to storage 'local'",
    ),
    (
        "allowKeyChange that is not a boolean",
        good_config(tenants=[{"name": "alice-agent", "allowKeyChange": "yes"}]),
        None,
        "tenants[0].allowKeyChange",
        "must be true or false",
    ),
    (
        "rolloutWave that is not a whole number",
        good_config(tenants=[{"name": "alice-agent", "rolloutWave": "first"}]),
        None,
        "tenants[0].rolloutWave",
        "whole number from 0 to 100",
    ),
    (
        "negative rolloutWave",
        good_config(tenants=[{"name": "alice-agent", "rolloutWave": -1}]),
        None,
        "tenants[0].rolloutWave",
        "whole number from 0 to 100",
    ),
    (
        "tenant field of the wrong type",
        good_config(tenants=[{"name": "alice-agent", "instanceType": 3}]),
        None,
        "tenants[0].instanceType",
        "must be a string",
    ),
    (
        "malformed cvm id",
        good_config(tenants=[{"name": "alice-agent", "cvmId": "not-an-id"}]),
        None,
        "tenants[0].cvmId",
        "UUID",
    ),
    (
        "secret for a tenant that does not exist",
        good_config(
            tenantSecrets={
                "alice-agent": {"masterKey": GOOD_KEY},
                "ghost-agent": {"masterKey": GOOD_KEY},
            }
        ),
        None,
        "tenantSecrets.ghost-agent",
        "does not exist",
    ),
    (
        "typo in a tenant secret field",
        good_config(tenantSecrets={"alice-agent": {"masterKey": GOOD_KEY, "masterkey": "x"}}),
        None,
        "tenantSecrets.alice-agent.masterkey",
        "did you mean 'masterKey'",
    ),
    (
        "tenant secrets stored in plaintext",
        good_config(),
        {"redpillApiKey"},
        "tenantSecrets",
        "--secret",
    ),
    (
        "redpill key stored in plaintext",
        good_config(),
        {"tenantSecrets"},
        "redpillApiKey",
        "--secret",
    ),
    (
        "no redpill key at all",
        good_config(redpillApiKey=""),
        None,
        "tenantSecrets.alice-agent.redpillApiKey",
        "no Redpill API key",
    ),
    (
        "dev OS without an SSH public key",
        good_config(phalaSshPublicKey=""),
        None,
        "phalaSshPublicKey",
        "required when phalaDevOs is true",
    ),
    (
        "SSH public key that is a private key",
        good_config(phalaSshPublicKey="-----BEGIN OPENSSH PRIVATE KEY-----"),
        None,
        "phalaSshPublicKey",
        "public key line",
    ),
    (
        "dev OS flag that is not a boolean",
        good_config(phalaDevOs="yes"),
        None,
        "phalaDevOs",
        "true or false",
    ),
    (
        "wait timeout not a number",
        good_config(phalaWaitTimeoutSeconds="ten"),
        None,
        "phalaWaitTimeoutSeconds",
        "whole number",
    ),
    (
        "wait timeout out of range",
        good_config(phalaWaitTimeoutSeconds="5"),
        None,
        "phalaWaitTimeoutSeconds",
        "between 30 and 3600",
    ),
    ("on-chain KMS", good_config(phalaKms="base"), None, "phalaKms", "only 'phala'"),
    (
        "malformed instance type",
        good_config(phalaInstanceType="medium"),
        None,
        "phalaInstanceType",
        "instance type",
    ),
    ("typo in a top-level key", good_config(tenant=[]), None, "tenant", "did you mean 'tenants'"),
    (
        "tenants that are not a list",
        good_config(tenants={"name": "alice-agent"}),
        None,
        "tenants",
        "list of tenant objects",
    ),
    ("mux without channels", mux_config(muxChannels=[]), None, "muxChannels", "at least one"),
    (
        "mux with an unknown channel",
        mux_config(muxChannels=["telegram", "signal"]),
        None,
        "muxChannels",
        "unknown channel 'signal'",
    ),
    (
        "mux telegram channel without its bot token",
        mux_config(muxTelegramBotToken=""),
        None,
        "muxTelegramBotToken",
        "required because muxChannels includes 'telegram'",
    ),
    (
        "mux bot token for a channel it does not serve",
        mux_config(muxDiscordBotToken="discord-token-xxxxxxxxxxxxxxxx"),
        {
            "tenantSecrets",
            "redpillApiKey",
            "muxMasterKey",
            "muxTelegramBotToken",
            "muxDiscordBotToken",
        },
        "muxDiscordBotToken",
        "does not include 'discord'",
    ),
    (
        "mux without master key or explicit register key",
        mux_config(muxMasterKey=""),
        None,
        "muxRegisterKey",
        "unless muxMasterKey",
    ),
    (
        "mux JWT key that is not a PEM",
        mux_config(muxJwtPrivateKey="not a pem"),
        {
            "tenantSecrets",
            "redpillApiKey",
            "muxMasterKey",
            "muxTelegramBotToken",
            "muxJwtPrivateKey",
        },
        "muxJwtPrivateKey",
        "must be a PEM private key",
    ),
    ("mux without an image", mux_config(muxImage=""), None, "muxImage", "required"),
    (
        "mux named like a tenant",
        mux_config(muxName="alice-agent"),
        None,
        "muxName",
        "also a tenant name",
    ),
    (
        "mux secret set without a mux",
        good_config(muxMasterKey=MUX_MASTER_KEY),
        None,
        "muxMasterKey",
        "muxName is empty",
    ),
    (
        "mux CVM id malformed",
        mux_config(muxCvmId="mux"),
        None,
        "muxCvmId",
        "UUID",
    ),
    (
        "mux instance type malformed",
        mux_config(muxInstanceType="large"),
        None,
        "muxInstanceType",
        "instance type",
    ),
    (
        "mux master key too short",
        mux_config(muxMasterKey="short-mux-key"),
        None,
        "muxMasterKey",
        "too short",
    ),
    (
        "telegram bot username with spaces",
        mux_config(muxTelegramBotUsername="my bot"),
        None,
        "muxTelegramBotUsername",
        "bot username",
    ),
    (
        "mux stack name malformed",
        good_config(muxStack="org/proj/stack/extra"),
        None,
        "muxStack",
        "must name a stack",
    ),
    (
        "disk size out of range",
        good_config(phalaDiskSizeGb="5"),
        None,
        "phalaDiskSizeGb",
        "between 10 and 2048",
    ),
    (
        "region that is not a slug",
        good_config(phalaRegion="us west"),
        None,
        "phalaRegion",
        "region slug",
    ),
    (
        "OS image that is not a name",
        good_config(phalaOsImage="dstack dev"),
        None,
        "phalaOsImage",
        "OS image name",
    ),
    (
        "mux key-change opt-in that is not a boolean",
        mux_config(muxAllowKeyChange="sure"),
        None,
        "muxAllowKeyChange",
        "true or false",
    ),
    (
        "health flag that is not a boolean",
        good_config(phalaVerifyHealth="maybe"),
        None,
        "phalaVerifyHealth",
        "true or false",
    ),
    (
        "mux channels that are not a list",
        mux_config(muxChannels="telegram"),
        None,
        "muxChannels",
        "list of strings",
    ),
    (
        "tenant secrets that are not an object",
        good_config(tenantSecrets=["alice-agent"]),
        None,
        "tenantSecrets",
        "object keyed by tenant name",
    ),
    (
        "tenant entry that is not an object",
        good_config(tenants=["alice-agent"]),
        None,
        "tenants[0]",
        "must be an object",
    ),
    (
        "mux deployed and referenced at once",
        mux_config(muxStack="org/openclaw-phala/mux"),
        None,
        "muxStack",
        "cannot be combined",
    ),
]


@pytest.mark.parametrize(
    ("config", "secret", "key", "words"),
    [pytest.param(c, s, k, w, id=case) for case, c, s, k, w in BAD_INPUTS],
)
def test_bad_input_fails_with_a_message_naming_the_key(
    config: dict[str, Any], secret: set[str] | None, key: str, words: str
) -> None:
    problems = problems_of(config, secret)
    named = [
        p
        for p in problems
        if p.startswith(f"openclaw-phala:{key}:") or p.startswith(f"openclaw-phala:{key} (")
    ]
    assert named, f"no problem names {key}: {problems}"
    assert any(words in p for p in named), named


def test_every_problem_is_reported_at_once() -> None:
    config = good_config(openclawImage="x:latest", phalaKms="eth", tenants=[{"name": "ab"}])
    problems = problems_of(config)
    assert len(problems) >= 3


def test_messages_never_contain_secret_values() -> None:
    short_key = "short-secret-value"
    config = good_config(
        tenantSecrets={"alice-agent": {"masterKey": short_key}},
        muxJwtPrivateKey="not-a-pem-secret-material",
    )
    with pytest.raises(SettingsError) as info:
        parse_settings(raw(config, {"tenantSecrets", "redpillApiKey", "muxJwtPrivateKey"}))
    assert short_key not in str(info.value)
    assert "not-a-pem-secret-material" not in str(info.value)


JWT_KEY_SECRETS = {
    "tenantSecrets",
    "redpillApiKey",
    "muxMasterKey",
    "muxTelegramBotToken",
    "muxJwtPrivateKey",
}


def test_an_ed25519_jwt_pem_is_accepted_and_kept_secret() -> None:
    pem = _pem()
    settings = parse_settings(raw(mux_config(muxJwtPrivateKey=pem), JWT_KEY_SECRETS))
    assert settings.mux is not None
    jwt_key = settings.mux.secrets.jwt_private_key
    assert jwt_key is not None and jwt_key.reveal() == pem
    assert "BEGIN" not in repr(settings)


def test_a_jwt_pem_pasted_with_literal_backslash_n_is_refused_without_echoing_it() -> None:
    pem = _pem()
    with pytest.raises(SettingsError) as info:
        parse_settings(raw(mux_config(muxJwtPrivateKey=pem.replace("\n", "\\n")), JWT_KEY_SECRETS))
    message = str(info.value)
    assert "openclaw-phala:muxJwtPrivateKey" in message
    assert "literal \\n" in message and "< key.pem" in message
    assert pem.splitlines()[1] not in message and "BEGIN PRIVATE KEY" not in message


def test_local_tenant_has_no_r2_settings() -> None:
    config = good_config(
        tenants=[{"name": "alice-agent", "storage": "local"}], cloudflareAccountId=""
    )
    (tenant,) = parse_settings(raw(config)).tenants
    assert tenant.storage_mode is StorageMode.LOCAL
    assert tenant.r2 is None


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("abcde", True),
        ("a" * 63, True),
        ("Agent-7", True),
        ("abcd", False),
        ("a" * 64, False),
        ("7agent", False),
        ("agent-", False),
        ("ag--ent", False),
        ("agént-one", False),
    ],
)
def test_cvm_name_rule_matches_the_phala_cli(name: str, valid: bool) -> None:
    assert (check_cvm_name(name) is None) is valid


@pytest.mark.parametrize(
    ("bucket", "valid"),
    [
        ("abc", True),
        ("a-b-c", True),
        ("ab", False),
        ("-abc", False),
        ("aBc", False),
        ("a_c", False),
    ],
)
def test_r2_bucket_rule(bucket: str, valid: bool) -> None:
    assert (check_r2_bucket_name(bucket) is None) is valid


def test_read_raw_config_keeps_only_this_project_and_secret_flags() -> None:
    raw_config = read_raw_config(
        {"openclaw-phala:tenants": "[]", "aws:region": "x", "openclaw-phala:redpillApiKey": "k"},
        lambda key: key == "openclaw-phala:redpillApiKey",
    )
    assert raw_config.values == {"tenants": "[]", "redpillApiKey": "k"}
    assert raw_config.secret_keys == frozenset({"redpillApiKey"})


def test_scalar_keys_have_unique_names() -> None:
    names = [key.name for key in SCALAR_KEYS]
    assert len(names) == len(set(names))

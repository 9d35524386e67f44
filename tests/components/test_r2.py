from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pytest

from components import r2

ACCOUNT = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("jurisdiction", "host"),
    [
        ("default", f"{ACCOUNT}.r2.cloudflarestorage.com"),
        ("eu", f"{ACCOUNT}.eu.r2.cloudflarestorage.com"),
        ("fedramp", f"{ACCOUNT}.fedramp.r2.cloudflarestorage.com"),
    ],
)
def test_s3_endpoint_per_jurisdiction(jurisdiction: str, host: str) -> None:
    assert r2.s3_endpoint(ACCOUNT, jurisdiction) == f"https://{host}"


def test_policy_resources_name_exactly_one_bucket() -> None:
    resources = json.loads(r2.bucket_policy_resources(ACCOUNT, "eu", "my-bucket"))
    assert resources == {f"com.cloudflare.edge.r2.bucket.{ACCOUNT}_eu_my-bucket": "*"}


def test_policy_resources_are_compact_json_as_the_api_echoes_them() -> None:
    text = r2.bucket_policy_resources("a" * 32, "eu", "openclaw-bob")
    assert text == json.dumps(json.loads(text), separators=(",", ":"))
    assert " " not in text


def test_secret_access_key_is_sha256_hex_of_the_token_value() -> None:
    assert r2.s3_secret_access_key("abc") == hashlib.sha256(b"abc").hexdigest()
    assert len(r2.s3_secret_access_key("anything")) == 64


@dataclass(frozen=True)
class Group:
    id: str
    name: str


def test_permission_group_is_chosen_by_exact_name() -> None:
    groups = [
        Group("read", "Workers R2 Storage Bucket Item Read"),
        Group("write", r2.BUCKET_ITEM_WRITE_PERMISSION),
        Group("account-wide", "Workers R2 Storage Write"),
    ]
    assert r2.permission_group_id(groups, r2.BUCKET_ITEM_WRITE_PERMISSION) == "write"


def test_missing_permission_group_fails_clearly() -> None:
    with pytest.raises(r2.PermissionGroupNotFoundError, match="found none"):
        r2.permission_group_id([Group("x", "Other")], r2.BUCKET_ITEM_WRITE_PERMISSION)


def test_ambiguous_permission_group_fails_clearly() -> None:
    groups = [
        Group("a", r2.BUCKET_ITEM_WRITE_PERMISSION),
        Group("b", r2.BUCKET_ITEM_WRITE_PERMISSION),
    ]
    with pytest.raises(r2.PermissionGroupNotFoundError, match="found 2"):
        r2.permission_group_id(groups, r2.BUCKET_ITEM_WRITE_PERMISSION)

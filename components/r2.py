"""Pure Cloudflare R2 rules: endpoints, token scopes and S3 credentials.

Facts from Cloudflare's R2 docs: an account token scoped to one bucket works as
an S3 credential pair where the access key id is the token id and the secret
access key is the SHA-256 (lowercase hex) of the token value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Final, Protocol

# Read, write and list objects in the buckets named by the policy; nothing else.
BUCKET_ITEM_WRITE_PERMISSION: Final = "Workers R2 Storage Bucket Item Write"
S3_REGION: Final = "auto"
S3_PROVIDER: Final = "Cloudflare"  # rclone's provider name for R2

_ENDPOINT_SUBDOMAIN: Final = {"default": "", "eu": ".eu", "fedramp": ".fedramp"}


def s3_endpoint(account_id: str, jurisdiction: str) -> str:
    """The S3 API endpoint for buckets of this account in this jurisdiction."""
    return f"https://{account_id}{_ENDPOINT_SUBDOMAIN[jurisdiction]}.r2.cloudflarestorage.com"


def endpoint_location(endpoint: str) -> tuple[str, str] | None:
    """(account id, jurisdiction) of an endpoint `s3_endpoint` made, or None."""
    for jurisdiction, subdomain in _ENDPOINT_SUBDOMAIN.items():
        suffix = f"{subdomain}.r2.cloudflarestorage.com"
        if endpoint.startswith("https://") and endpoint.endswith(suffix):
            account = endpoint.removeprefix("https://").removesuffix(suffix)
            if account and "." not in account:
                return account, jurisdiction
    return None


def bucket_resource_key(account_id: str, jurisdiction: str, bucket: str) -> str:
    """The token policy resource that names exactly one bucket."""
    return f"com.cloudflare.edge.r2.bucket.{account_id}_{jurisdiction}_{bucket}"


def bucket_policy_resources(account_id: str, jurisdiction: str, bucket: str) -> str:
    """The policy `resources` value (a JSON string in pulumi-cloudflare 6.x).

    Compact, because the API answers with compact JSON and the provider keeps that text:
    with spaces, every refresh would show a change to the token."""
    resources = {bucket_resource_key(account_id, jurisdiction, bucket): "*"}
    return json.dumps(resources, separators=(",", ":"))


def token_name(bucket: str) -> str:
    return f"openclaw-phala-{bucket}-rw"


def s3_secret_access_key(token_value: str) -> str:
    return hashlib.sha256(token_value.encode()).hexdigest()


class PermissionGroup(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...


class PermissionGroupNotFoundError(LookupError):
    pass


def permission_group_id(groups: Iterable[PermissionGroup], name: str) -> str:
    """Pick a permission group by its exact name; its id is not hard-coded on purpose."""
    matches = sorted({group.id for group in groups if group.name == name})
    if len(matches) != 1:
        found = "none" if not matches else f"{len(matches)} ({', '.join(matches)})"
        raise PermissionGroupNotFoundError(
            f"expected exactly one Cloudflare permission group named '{name}', found {found}; "
            "check that the Cloudflare API token may read account token permission groups"
        )
    return matches[0]

"""Pulumi state in a private R2 bucket, as the README's "Working as a team" sets it up,
on loopback: a bucket in moto (tests/support/moto_server.py) behind the R2 front
(tests/support/r2_front.py), an R2-shaped API token for it, and what an operator
exports: the S3 credentials derived from that token as R2 derives them, and the login
URL of the README with the endpoint on 127.0.0.1.

Where the pinned engine (pulumi v3.274.0, pkg/backend/diy) keeps things in the bucket:
a stack's checkpoint at `.pulumi/stacks/<project>/<stack>.json` (its previous version
beside it as `.json.bak`, copies under `.pulumi/backups/` and `.pulumi/history/`), and
each running update's lock at `.pulumi/locks/organization/<project>/<stack>/<uuid>.json`
(lock.go: stackLockDir, lockPath).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components import r2
from tests.support.loopback_tls import make_loopback_tls
from tests.support.moto_server import MotoServer
from tests.support.r2_front import R2Front

PROJECT = "openclaw-phala"
# The AWS SDK in pulumi asks for response checksums it then cannot find on objects
# written without one, and prints a WARN line per read; the README sets this to quiet it.
QUIET_CHECKSUM_WARNING = {"AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"}


def login_url(bucket: str, endpoint: str) -> str:
    """The README's `pulumi login` URL for a bucket and an endpoint host."""
    return f"s3://{bucket}?endpoint={endpoint}&region=auto&s3ForcePathStyle=true"


def checkpoint_key(stack: str) -> str:
    return f".pulumi/stacks/{PROJECT}/{stack}.json"


def lock_prefix(stack: str) -> str:
    return f".pulumi/locks/organization/{PROJECT}/{stack}/"


@dataclass
class R2StateBucket:
    moto: MotoServer
    front: R2Front
    bucket: str
    token_id: str
    token_value: str

    @property
    def login_url(self) -> str:
        return login_url(self.bucket, self.front.host_port)

    def credentials_env(self) -> dict[str, str]:
        """What each operator (and CI) exports: S3 credentials as R2 derives them from the
        bucket's API token, and the test CA that stands in for R2's public certificate."""
        return {
            "AWS_ACCESS_KEY_ID": self.token_id,
            "AWS_SECRET_ACCESS_KEY": r2.s3_secret_access_key(self.token_value),
            "SSL_CERT_FILE": str(self.front.tls.ca_file),
            **QUIET_CHECKSUM_WARNING,
        }

    def new_bucket(self) -> str:
        """Another private bucket behind the same front and token (a restore target)."""
        name = f"openclaw-state-{uuid.uuid4().hex[:10]}"
        self.moto.client().create_bucket(Bucket=name)
        return name

    # ----- what the bucket holds, read straight from moto ---------------------------------

    def keys(self, prefix: str = "", bucket: str | None = None) -> list[str]:
        client = self.moto.client()
        found: list[str] = []
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket or self.bucket, Prefix=prefix):
            found.extend(entry["Key"] for entry in page.get("Contents", []))
        return sorted(found)

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        client = self.moto.client()
        return {
            key: client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            for key in self.keys(prefix)
        }

    def checkpoint(self, stack: str) -> dict[str, Any]:
        """The stack's checkpoint object, parsed: it must always be whole JSON."""
        body = self.moto.client().get_object(Bucket=self.bucket, Key=checkpoint_key(stack))
        return json.loads(body["Body"].read())

    def resources(self, stack: str) -> list[dict[str, Any]]:
        latest = self.checkpoint(stack)["checkpoint"].get("latest") or {}
        return latest.get("resources") or []

    def locks(self, stack: str) -> list[str]:
        return self.keys(lock_prefix(stack))


@contextmanager
def r2_state_bucket(moto: MotoServer, tls_directory: Path) -> Iterator[R2StateBucket]:
    """A fresh private bucket and its token, behind an R2 front of its own."""
    bucket = f"openclaw-state-{uuid.uuid4().hex[:10]}"
    moto.client().create_bucket(Bucket=bucket)
    token_id = secrets.token_hex(16)  # R2 token ids are 32 hex characters
    token_value = secrets.token_urlsafe(30)  # and their values 40 characters
    with R2Front(
        upstream_port=moto.port,
        access_key_id=token_id,
        secret_access_key=r2.s3_secret_access_key(token_value),
        tls=make_loopback_tls(tls_directory),
    ) as front:
        yield R2StateBucket(moto, front, bucket, token_id, token_value)

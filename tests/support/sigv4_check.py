"""AWS Signature Version 4 checked as an S3 server checks it (for the R2 front).

From the Authorization header's credential scope, signed headers and signature, the
canonical request is rebuilt from the request as received (S3 signs the path as sent,
without a second URI-encoding; the query re-encoded per the spec, sorted), and the
signature recomputed with the HMAC-SHA256 key chain from the secret. Also checked, as
S3 does: the access key id, the scope's region and service, the date against
`x-amz-date` and the clock (15 minutes), and a payload hash given as a digest against
the body. Presigned URLs and SigV4a are not handled (the engine does not use them).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from typing import Any
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW = datetime.timedelta(minutes=15)
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")

Refusal = tuple[str, str]  # (S3 error code, message)


def check_sigv4(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Any,
    body: bytes,
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str,
) -> Refusal | None:
    """None if the request is signed with these credentials for `region`, else why not.
    `headers` is an `email.message.Message` (what http.server hands a handler)."""
    algorithm, _, rest = headers.get("Authorization", "").partition(" ")
    if algorithm != ALGORITHM:
        return "AccessDenied", "only AWS Signature V4 in the Authorization header"
    try:
        parts = dict(item.strip().split("=", 1) for item in rest.split(","))
        key_id, date, scope_region, service, terminal = parts["Credential"].split("/")
        signed_headers = parts["SignedHeaders"].split(";")
        signature = parts["Signature"]
    except (KeyError, ValueError):
        return "AuthorizationHeaderMalformed", "malformed Authorization header"
    if key_id != access_key_id:
        return "InvalidAccessKeyId", "the access key id is not the bucket token's id"
    if scope_region != region or service != "s3" or terminal != "aws4_request":
        return "AuthorizationHeaderMalformed", f"credential scope region {scope_region!r}"
    amz_date = headers.get("x-amz-date", "")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return "AccessDenied", "missing or malformed x-amz-date"
    if amz_date[:8] != date:
        return "SignatureDoesNotMatch", "x-amz-date is not the credential date"
    if abs(datetime.datetime.now(datetime.UTC) - when) > MAX_CLOCK_SKEW:
        return "RequestTimeTooSkewed", "the request time is too far from the server's"
    payload_hash = headers.get("x-amz-content-sha256", "")
    if _HEX_DIGEST.match(payload_hash) and hashlib.sha256(body).hexdigest() != payload_hash:
        return "XAmzContentSHA256Mismatch", "the body does not match its declared hash"
    canonical = "\n".join(
        [
            method,
            raw_path,
            _canonical_query(raw_query),
            "".join(f"{name}:{_header_value(headers, name)}\n" for name in signed_headers),
            ";".join(signed_headers),
            payload_hash,
        ]
    )
    scope = f"{date}/{scope_region}/{service}/{terminal}"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = "\n".join([algorithm, amz_date, scope, digest])
    key = f"AWS4{secret_access_key}".encode()
    for step in (date, scope_region, service, terminal):
        key = hmac.new(key, step.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "SignatureDoesNotMatch", "the signature does not verify with the secret"
    return None


def _header_value(headers: Any, name: str) -> str:
    values = headers.get_all(name) or []
    return ",".join(" ".join(value.split()) for value in values)


def _canonical_query(raw_query: str) -> str:
    pairs = []
    for item in raw_query.split("&") if raw_query else []:
        name, _, value = item.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))

"""Read-only calls to the Phala Cloud API: the endpoints `phala cvms list/get` use.

Every change goes through the pinned CLI (driver/cli.py). Lookups and status polls are
plain GETs: each CLI start costs about a second of Node start-up, which would dominate a
deploy otherwise. Reads are retried on transport errors, 5xx and 429 (after the server's
`Retry-After`), within bounds; errors quote the service's `error_code` and message.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from driver import protocol
from driver.cli import phala_config_dir
from driver.errors import DriverError

DEFAULT_API_PREFIX = "https://cloud-api.phala.com/api/v1"
READ_API_VERSION = "2026-01-21"  # the version `phala cvms get` uses; it has gateway.base_domain
READ_ATTEMPTS = 8
RETRY_AFTER_CAP_SECONDS = 60.0
BACKOFF_CAP_SECONDS = 8.0
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)


class PhalaApiError(DriverError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def normalize_cvm_id(cvm_id: str) -> str:
    """The {id} the CLI sends in /cvms/{id}: UUIDs without dashes, 40-hex as app_<hex>."""
    if _UUID.fullmatch(cvm_id):
        return cvm_id.replace("-", "")
    if re.fullmatch(r"[0-9a-fA-F]{40}", cvm_id):
        return f"app_{cvm_id}"
    return cvm_id


def phala_credentials(environ: Mapping[str, str]) -> tuple[str | None, str]:
    """(API key, API prefix) resolved the way the phala CLI resolves them."""
    profile: dict[str, Any] = {}
    try:
        document = json.loads((phala_config_dir(environ) / "credentials.json").read_text())
        profile = document.get("profiles", {}).get(document.get("current_profile", ""), {})
    except (OSError, json.JSONDecodeError, AttributeError):
        pass
    key = environ.get(protocol.API_KEY) or profile.get("token") or None
    prefix = (environ.get("PHALA_CLOUD_API_PREFIX") or "").strip() or profile.get("api_prefix")
    return key, (prefix or DEFAULT_API_PREFIX).rstrip("/")


def error_message(status: int, body: bytes, reason: str) -> str:
    """The service's words for an error: `ERR-xx-yyy: message` for a structured error
    (at the top level of the body, as the Python and Go SDKs read it, or under `detail`,
    as the JS SDK also accepts), the validation messages for a 422, else the plain detail."""
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return reason or "error"
    if not isinstance(document, dict):
        return reason or "error"
    detail = document.get("detail")
    structured = document if "error_code" in document else detail
    if isinstance(structured, dict):
        code, message = structured.get("error_code"), structured.get("message")
        text = f"{code}: {message}" if code else str(message or reason or "error")
        suggestions = structured.get("suggestions")
        if isinstance(suggestions, list) and suggestions:
            text += f" ({suggestions[0]})"
        return text
    if isinstance(detail, list):
        parts = [str(item.get("msg")) for item in detail if isinstance(item, dict)]
        return "Validation failed: " + "; ".join(parts) if parts else "Validation failed"
    return str(detail or reason or "error")


def retry_after_seconds(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """`Retry-After` as seconds: a number of seconds or an HTTP date; None when absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def retry_delay(attempt: int, retry_after: float | None) -> float:
    backoff = min(0.5 * 2**attempt, BACKOFF_CAP_SECONDS)
    if retry_after is None:
        return backoff
    return min(max(retry_after, 0.0), RETRY_AFTER_CAP_SECONDS)


def retryable(status: int) -> bool:
    return status == 429 or status == 408 or status >= 500


class PhalaApi:
    def __init__(
        self,
        api_key: str,
        prefix: str,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api_key = api_key
        self.prefix = prefix
        self.timeout = timeout
        self.calls = 0
        self._sleep = sleep

    def _get(self, path: str) -> Any:
        for attempt in range(READ_ATTEMPTS):
            self.calls += 1
            request = urllib.request.Request(  # noqa: S310 - the prefix is http(s) by construction
                f"{self.prefix}{path}",
                headers={
                    "X-API-Key": self._api_key,
                    "X-Phala-Version": READ_API_VERSION,
                    "Accept": "application/json",
                    "User-Agent": "openclaw-phala-driver",
                },
            )
            last = attempt + 1 == READ_ATTEMPTS
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    return json.loads(response.read())
            except urllib.error.HTTPError as error:
                body = error.read()
                if retryable(error.code) and not last:
                    delay = retry_delay(
                        attempt, retry_after_seconds(error.headers.get("Retry-After"))
                    )
                    self._sleep(delay)
                    continue
                message = error_message(error.code, body, error.reason or "")
                if error.code in (401, 403):
                    message += "; check PHALA_CLOUD_API_KEY (or `phala login`) where pulumi runs"
                if error.code == 429:
                    message += f"; still rate limited after {READ_ATTEMPTS} attempts"
                raise PhalaApiError(f"HTTP {error.code}: {message}", error.code) from None
            except (urllib.error.URLError, OSError, ValueError) as error:
                if not last:
                    self._sleep(retry_delay(attempt, None))
                    continue
                raise PhalaApiError(f"cannot reach {self.prefix}: {error}") from None
        raise AssertionError("unreachable")

    def get_cvm(self, cvm_id: str) -> dict[str, Any] | None:
        """The CVM (2026-01-21 schema), or None when Phala says it does not exist."""
        try:
            document = self._get(f"/cvms/{urllib.parse.quote(normalize_cvm_id(cvm_id), safe='')}")
        except PhalaApiError as error:
            if error.status == 404:
                return None
            raise
        if not isinstance(document, dict) or not document.get("name"):
            raise PhalaApiError(f"unexpected answer for CVM {cvm_id}")
        return document

    def cvms_named(self, name: str) -> list[dict[str, Any]]:
        """Every current CVM whose name is exactly `name` (the API search is fuzzy),
        dying ones included: the caller decides what a deleting CVM means."""
        matches: list[dict[str, Any]] = []
        page = 1
        while True:
            query = urllib.parse.urlencode({"page": page, "page_size": 100, "search": name})
            listing = self._get(f"/apps?{query}")
            if not isinstance(listing, dict):
                raise PhalaApiError("unexpected answer listing CVMs")
            for app in listing.get("dstack_apps") or []:
                # An app whose CVM was deleted has no current CVM: nothing to adopt.
                cvm = app.get("current_cvm") if isinstance(app, dict) else None
                if isinstance(cvm, dict) and cvm.get("name") == name:
                    matches.append({"app_id": app.get("app_id"), **cvm})
            if page >= int(listing.get("total_pages") or 1):
                return matches
            page += 1

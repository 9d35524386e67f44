"""A local emulator of the Cloudflare v4 API calls that R2 buckets and account tokens need.

Faithful to what the cloudflare provider (v6, bridging the v5 Terraform provider) sends
and reads, as recorded in the engine build facts:
- the base URL keeps its path prefix (`/client/v4`); only 127.0.0.1 is bound;
- every request needs `Authorization: Bearer <token>`, the token matching
  `^[0-9A-Za-z_-]{40,80}$` and this emulator's token (else 403, code 10000);
- replies use the v4 envelope `{"success","errors","messages","result"}`; every error
  status carries `success: false` and `errors: [{code, message}]`;
- `GET /accounts/{a}/tokens/permission_groups?name=` lists permission groups (`+` for
  spaces), each `{id, name, scopes}`;
- R2 buckets: `POST /accounts/{a}/r2/buckets` with the `cf-r2-jurisdiction` header
  (`default`, `eu`, `fedramp`), `GET`/`PATCH`/`DELETE /accounts/{a}/r2/buckets/{name}`
  with the same header; a bucket is looked up per jurisdiction; a taken name is 409;
- account tokens: `POST /accounts/{a}/tokens` returns the `value` once; `GET` never does;
  `PUT` replaces the body; `DELETE` answers `{id}`; each policy's `resources` is kept
  as the exact text the client sent and echoed back byte for byte.

Faults for tests: an error status for the next N matching requests (5xx, or 429 with
`Retry-After`, `Retry-After-Ms` or `x-should-retry`), a bucket or token deleted behind
the program's back, a bucket name taken by someone else, and a token's status changed
(`disabled`, `expired`, `revoked (exposed)`). A request log records every call (never
the Authorization header, so the operator token is never kept).

emulators/cloudflare/FIDELITY.md lists each behaviour with its source and its test, and
what no source settles.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from standins.json_text import RawJsonError, raw_policy_resources, with_raw_values

LOOPBACK_HOST = "127.0.0.1"
PATH_PREFIX = "/client/v4"
DEFAULT_API_TOKEN = "cf-emulator-operator-token-" + "0123456789abcdef" * 2
API_TOKEN_PATTERN = re.compile(r"^[0-9A-Za-z_-]{40,80}$")
JURISDICTIONS = ("default", "eu", "fedramp")
# The statuses cloudflare-go v6.10.0 knows (shared/shared.go: TokenStatus) plus the one
# terraform-provider-cloudflare v5.19.1 also handles (account_token/resource.go:191).
TOKEN_STATUSES = ("active", "disabled", "expired", "revoked (exposed)")
BUCKET_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
BUCKET_SCOPE = "com.cloudflare.edge.r2.bucket"

# (id, name, scopes): a few real groups, including the two the program may look up.
PERMISSION_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("2efd5506f9c8494dacb1fa10a3e7d5b6", "Workers R2 Storage Bucket Item Write", (BUCKET_SCOPE,)),
    ("6a018a9f2fc74eb6b293b0c548f38b39", "Workers R2 Storage Bucket Item Read", (BUCKET_SCOPE,)),
    (
        "bf7481a1826f439697cb59a20b22293e",
        "Workers R2 Storage Write",
        ("com.cloudflare.api.account",),
    ),
    (
        "b4992e1108244f5d8bfbd5744320c2e1",
        "Workers R2 Storage Read",
        ("com.cloudflare.api.account",),
    ),
)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class CfRequest:
    method: str
    path: str  # without the /client/v4 prefix
    query: dict[str, list[str]]
    jurisdiction: str | None
    body: Any
    status: int


@dataclass
class _Fault:
    method: str | None
    path_pattern: re.Pattern[str]
    status: int
    remaining: int
    headers: dict[str, str]


class CfApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class CloudflareEmulator:
    """In-memory Cloudflare API on 127.0.0.1; use as a context manager."""

    def __init__(
        self,
        api_token: str = DEFAULT_API_TOKEN,
        *,
        account_id: str,
        port: int = 0,
        on_request: Callable[[CfRequest], None] | None = None,
    ) -> None:
        self.api_token = api_token
        self.account_id = account_id
        self._requested_port = port
        # Called with each request once it is answered (`python -m emulators.cloudflare
        # --request-log` writes them to a file another process reads).
        self.on_request = on_request
        self._lock = threading.RLock()
        self._buckets: dict[tuple[str, str], dict[str, Any]] = {}  # (jurisdiction, name)
        self._foreign_buckets: set[tuple[str, str]] = set()
        self._tokens: dict[str, dict[str, Any]] = {}
        self._values: dict[str, str] = {}
        self._faults: list[_Fault] = []
        self._log: list[CfRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> CloudflareEmulator:
        server = ThreadingHTTPServer((LOOPBACK_HOST, self._requested_port), _make_handler(self))
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator is not running")
        return f"http://{LOOPBACK_HOST}:{self._server.server_address[1]}{PATH_PREFIX}/"

    # ----- faults and out-of-band changes ----------------------------------------------

    def inject_error(
        self,
        method: str | None,
        path_regex: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (and `headers`, e.g.
        `Retry-After-Ms` or `x-should-retry`; `retry_after` sets `Retry-After`)."""
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = str(retry_after)
        with self._lock:
            self._faults.append(_Fault(method, re.compile(path_regex), status, times, extra))

    def take_bucket_name(self, name: str, jurisdiction: str = "default") -> None:
        """Someone else (another account) owns this name: creating it fails with 409."""
        with self._lock:
            self._foreign_buckets.add((jurisdiction, name))

    def delete_bucket_behind_back(self, name: str, jurisdiction: str = "default") -> None:
        with self._lock:
            del self._buckets[(jurisdiction, name)]

    def delete_token_behind_back(self, token_id: str) -> None:
        with self._lock:
            del self._tokens[token_id]

    def set_token_status(self, token_id: str, status: str) -> None:
        """Change a token's status behind the program's back (e.g. Cloudflare revoking a
        leaked token: `revoked (exposed)`)."""
        if status not in TOKEN_STATUSES:
            raise ValueError(f"unknown token status {status!r}")
        with self._lock:
            self._tokens[token_id]["status"] = status

    # ----- inspection ------------------------------------------------------------------

    @property
    def request_log(self) -> list[CfRequest]:
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def buckets(self) -> dict[tuple[str, str], dict[str, Any]]:
        with self._lock:
            return {key: dict(value) for key, value in self._buckets.items()}

    def tokens(self) -> dict[str, dict[str, Any]]:
        """Each token as the API holds it, resources parsed (see `raw_resources`)."""
        with self._lock:
            tokens = {key: json.loads(json.dumps(value)) for key, value in self._tokens.items()}
        for token in tokens.values():
            for policy in token["policies"]:
                policy.pop("resources_raw", None)
        return tokens

    def raw_resources(self, token_id: str) -> list[str]:
        """The exact text of each policy's resources, as sent and as echoed."""
        with self._lock:
            return [policy["resources_raw"] for policy in self._tokens[token_id]["policies"]]

    def token_value(self, token_id: str) -> str:
        with self._lock:
            return self._values[token_id]

    # ----- routing ---------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Any,
        body: Any,
        raw: str = "",
    ) -> tuple[int, Any, dict[str, str]]:
        """(status, result, headers). A result may be a `RawResult` (text to send as is)."""
        fault = self._take_fault(method, path)
        if fault is not None:
            raise _FaultError(fault.status, dict(fault.headers))
        self._authorize(headers.get("Authorization", ""))
        segments = [unquote(part) for part in path.strip("/").split("/") if part]
        if len(segments) < 2 or segments[0] != "accounts":
            raise CfApiError(HTTPStatus.NOT_FOUND, 7000, "No route for that URI")
        if segments[1] != self.account_id:
            raise CfApiError(
                HTTPStatus.FORBIDDEN, 9109, "Unauthorized to access requested resource"
            )
        rest = segments[2:]
        with self._lock:
            match method, rest:
                case "GET", ["tokens", "permission_groups"]:
                    return HTTPStatus.OK, self._permission_groups(query), {}
                case "POST", ["r2", "buckets"]:
                    return HTTPStatus.OK, self._create_bucket(headers, body), {}
                case "GET", ["r2", "buckets", name]:
                    return HTTPStatus.OK, self._bucket(headers, name), {}
                case "PATCH", ["r2", "buckets", name]:
                    return HTTPStatus.OK, self._patch_bucket(headers, name), {}
                case "DELETE", ["r2", "buckets", name]:
                    self._bucket(headers, name)
                    del self._buckets[(self._jurisdiction(headers), name)]
                    return HTTPStatus.OK, {}, {}
                case "POST", ["tokens"]:
                    return HTTPStatus.OK, self._create_token(body, raw), {}
                case "GET", ["tokens", token_id]:
                    return HTTPStatus.OK, self._token_view(self._token(token_id)), {}
                case "PUT", ["tokens", token_id]:
                    return HTTPStatus.OK, self._update_token(token_id, body, raw), {}
                case "DELETE", ["tokens", token_id]:
                    self._token(token_id)
                    del self._tokens[token_id]
                    return HTTPStatus.OK, {"id": token_id}, {}
        raise CfApiError(HTTPStatus.NOT_FOUND, 7000, "No route for that URI")

    def _authorize(self, header: str) -> None:
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not API_TOKEN_PATTERN.match(token):
            raise CfApiError(HTTPStatus.BAD_REQUEST, 6003, "Invalid request headers")
        if not secrets.compare_digest(token, self.api_token):
            raise CfApiError(HTTPStatus.FORBIDDEN, 10000, "Authentication error")

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if (
                    fault.remaining > 0
                    and fault.method in (None, method)
                    and fault.path_pattern.search(path)
                ):
                    fault.remaining -= 1
                    return fault
        return None

    def _permission_groups(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        # The API documents both filters; how `scope` matches is not published: a group
        # matches when the scope is one of its scopes.
        wanted = query.get("name", [None])[0]
        scope = query.get("scope", [None])[0]
        return [
            {"id": group_id, "name": name, "scopes": list(scopes)}
            for group_id, name, scopes in PERMISSION_GROUPS
            if (wanted is None or wanted == name) and (scope is None or scope in scopes)
        ]

    @staticmethod
    def _jurisdiction(headers: Any) -> str:
        value = headers.get("cf-r2-jurisdiction") or "default"
        if value not in JURISDICTIONS:
            raise CfApiError(HTTPStatus.BAD_REQUEST, 10040, f"Invalid jurisdiction {value!r}")
        return value

    def _bucket(self, headers: Any, name: str) -> dict[str, Any]:
        bucket = self._buckets.get((self._jurisdiction(headers), name))
        if bucket is None:
            raise CfApiError(HTTPStatus.NOT_FOUND, 10006, "The specified bucket does not exist.")
        return bucket

    def _create_bucket(self, headers: Any, body: Any) -> dict[str, Any]:
        jurisdiction = self._jurisdiction(headers)
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not BUCKET_NAME_PATTERN.match(name):
            raise CfApiError(
                HTTPStatus.BAD_REQUEST, 10005, "The specified bucket name is not valid."
            )
        if (jurisdiction, name) in self._foreign_buckets:
            raise CfApiError(
                HTTPStatus.CONFLICT, 10004, "The bucket you tried to create already exists."
            )
        if (jurisdiction, name) in self._buckets:
            raise CfApiError(
                HTTPStatus.CONFLICT,
                10004,
                "The bucket you tried to create already exists, and you own it.",
            )
        bucket = {
            "name": name,
            "creation_date": utc_now(),
            "location": (body.get("locationHint") or "WNAM").upper(),
            "storage_class": body.get("storageClass") or "Standard",
            "jurisdiction": jurisdiction,
        }
        self._buckets[(jurisdiction, name)] = bucket
        return dict(bucket)

    def _patch_bucket(self, headers: Any, name: str) -> dict[str, Any]:
        bucket = self._bucket(headers, name)
        storage_class = headers.get("cf-r2-storage-class")
        if storage_class not in ("Standard", "InfrequentAccess"):
            raise CfApiError(HTTPStatus.BAD_REQUEST, 10040, "Invalid storage class")
        bucket["storage_class"] = storage_class
        return dict(bucket)

    def _token(self, token_id: str) -> dict[str, Any]:
        token = self._tokens.get(token_id)
        if token is None:
            raise CfApiError(HTTPStatus.NOT_FOUND, 1003, "Invalid API Token")
        return token

    def _checked_policies(self, body: Any, raw: str) -> list[dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise CfApiError(HTTPStatus.BAD_REQUEST, 400, "name is required")
        policies = body.get("policies")
        if not isinstance(policies, list) or not policies:
            raise CfApiError(HTTPStatus.BAD_REQUEST, 400, "policies are required")
        try:
            raw_resources = raw_policy_resources(raw, in_result=False)
        except RawJsonError:
            raise CfApiError(HTTPStatus.BAD_REQUEST, 400, "invalid policy") from None
        known = {group_id for group_id, _, _ in PERMISSION_GROUPS}
        checked = []
        for index, policy in enumerate(policies):
            groups = policy.get("permission_groups") if isinstance(policy, dict) else None
            resources = policy.get("resources") if isinstance(policy, dict) else None
            if policy.get("effect") not in ("allow", "deny") or not isinstance(resources, dict):
                raise CfApiError(HTTPStatus.BAD_REQUEST, 400, "invalid policy")
            if not groups or any(g.get("id") not in known for g in groups):
                raise CfApiError(HTTPStatus.BAD_REQUEST, 400, "unknown permission group")
            checked.append(
                {
                    "id": hashlib.sha256(compact_json(policy).encode()).hexdigest()[:32],
                    "effect": policy["effect"],
                    "permission_groups": [{"id": g["id"]} for g in groups],
                    "resources": resources,
                    # Echoed byte for byte: the provider keeps the text it reads back.
                    "resources_raw": raw_resources[index],
                }
            )
        return checked

    def _create_token(self, body: Any, raw: str) -> RawResult:
        policies = self._checked_policies(body, raw)
        if (body.get("status") or "active") not in TOKEN_STATUSES:
            raise CfApiError(HTTPStatus.BAD_REQUEST, 400, "invalid status")
        token_id = secrets.token_hex(16)
        now = utc_now()
        token = {
            "id": token_id,
            "name": body["name"],
            "status": body.get("status") or "active",
            "issued_on": now,
            "modified_on": now,
            "last_used_on": None,
            "policies": policies,
        }
        for optional in ("condition", "expires_on", "not_before"):
            if body.get(optional) is not None:
                token[optional] = body[optional]
        self._tokens[token_id] = token
        self._values[token_id] = secrets.token_urlsafe(30)
        view = self._token_view(token)
        view.document["value"] = self._values[token_id]
        return view

    def _update_token(self, token_id: str, body: Any, raw: str) -> RawResult:
        token = self._token(token_id)
        token.update(
            {
                "name": body["name"] if isinstance(body, dict) else token["name"],
                "policies": self._checked_policies(body, raw),
                "modified_on": utc_now(),
                "status": body.get("status") or token["status"],
            }
        )
        return self._token_view(token)

    @staticmethod
    def _token_view(token: dict[str, Any]) -> RawResult:
        document = json.loads(json.dumps(token))
        raw = {}
        for index, policy in enumerate(document["policies"]):
            placeholder = f"\x00raw-resources-{index}\x00"
            raw[placeholder] = policy.pop("resources_raw")
            policy["resources"] = placeholder
        return RawResult(document, raw)


@dataclass
class RawResult:
    """A result whose placeholder strings are replaced by raw JSON text when sent."""

    document: dict[str, Any]
    raw: dict[str, str]


class _FaultError(Exception):
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers


def envelope(result: Any) -> dict[str, Any]:
    return {"success": True, "errors": [], "messages": [], "result": result}


def error_envelope(code: int, message: str) -> dict[str, Any]:
    return {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }


def _make_handler(emulator: CloudflareEmulator) -> type[BaseHTTPRequestHandler]:
    class CloudflareApiHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length > 0 else b""
            path = url.path.removeprefix(PATH_PREFIX)
            query = parse_qs(url.query)
            headers: dict[str, str] = {}
            status: int
            try:
                body = json.loads(raw) if raw else None
                if not url.path.startswith(PATH_PREFIX + "/"):
                    raise CfApiError(HTTPStatus.NOT_FOUND, 7000, "No route for that URI")
                status, result, headers = emulator.handle(
                    self.command, path, query, self.headers, body, raw.decode()
                )
                payload = envelope(result)
            except _FaultError as fault:
                status, headers = fault.status, fault.headers
                payload = error_envelope(status * 10, f"injected fault {status}")
            except CfApiError as error:
                status, payload = error.status, error_envelope(error.code, error.message)
            except ValueError:
                status, payload = HTTPStatus.BAD_REQUEST, error_envelope(6007, "Malformed JSON")
                body = None
            record = CfRequest(
                self.command,
                path,
                query,
                self.headers.get("cf-r2-jurisdiction"),
                body if not isinstance(body, dict) or "value" not in body else None,
                int(status),
            )
            with emulator._lock:
                emulator._log.append(record)
            if emulator.on_request is not None:
                emulator.on_request(record)
            if isinstance(result := payload.get("result"), RawResult):
                payload["result"] = result.document
                data = with_raw_values(payload, result.raw).encode()
            else:
                data = json.dumps(payload, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return CloudflareApiHandler

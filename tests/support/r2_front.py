"""An R2-like front on 127.0.0.1 for a local S3 server, with faults on demand.

The engine's S3 backend (pulumi v3.274.0: gocloud.dev s3blob on the AWS SDK for Go v2)
talks to this front; the front checks each request the way R2 would and forwards it to
moto (tests/support/moto_server.py), which stores the objects.

Faithful to R2 where the engine meets it:
- HTTPS only. The certificate is for 127.0.0.1, from a throwaway CA the tests hand to
  Go with `SSL_CERT_FILE`, so the README's endpoint without a scheme
  (`endpoint=<account>.r2.cloudflarestorage.com`) is used as on R2: pulumi prefixes
  `https://` (pkg/backend/diy/backend.go, translateLegacyS3Params).
- Path-style addressing: the bucket is the first path segment, the only form that can
  reach an IP address (a virtual-hosted request would need `<bucket>.127.0.0.1`).
- AWS Signature V4, verified: the access key id must be the bucket token's id and the
  signature must verify with the SHA-256 hex of the token's value, which is how R2 turns
  an API token into S3 credentials (components/r2.py); the credential scope must name
  region `auto` and service `s3`; a payload hash given as a digest must match the body;
  a request dated more than 15 minutes off is refused. Refusals are 403s with S3's
  codes (InvalidAccessKeyId, SignatureDoesNotMatch, AuthorizationHeaderMalformed,
  RequestTimeTooSkewed, XAmzContentSHA256Mismatch).
- Errors as S3 XML (`<Error><Code>…</Code>`), which the SDK classifies: 500
  InternalError and 503 SlowDown are retried by it.
Not modelled: R2's own quirks beyond these (other region aliases, rate limits, its
consistency timing); object storage is moto's.

Faults: `fail` answers matching requests with an S3 error instead of forwarding them,
`delay` answers them late, `hold` keeps them until the test releases them (a store that
is slow for as long as the test needs, without a sleep standing in for an event), and
`outage` refuses everything until ended. Every request is logged (`requests`) with its
operation, key, the region it was signed for, the SDK's attempt number and what the
front did with it.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import http.client
import ipaddress
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"
R2_REGION = "auto"
MAX_CLOCK_SKEW = datetime.timedelta(minutes=15)
HOLD_LIMIT_SECONDS = 300.0  # a held request is let go after this, whatever the test does
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}
_ERROR_CODES = {500: "InternalError", 502: "BadGateway", 503: "SlowDown"}
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class StoreRequest:
    """One request as the front saw it."""

    method: str
    bucket: str
    key: str
    query: dict[str, str]
    region: str | None
    access_key_id: str | None
    attempt: int | None  # from the SDK's amz-sdk-request header; None if absent
    is_copy: bool  # a CopyObject (PUT with x-amz-copy-source)
    outcome: str = "forwarded"  # or "refused: <code>", "failed <status>", "held", "delayed"
    status: int | None = None
    seconds: float = 0.0  # from the request line to the last byte of the answer

    @property
    def operation(self) -> str:
        if self.method == "GET" and not self.key:
            return "LIST"
        if self.method == "PUT" and self.is_copy:
            return "COPY"
        return self.method


Matcher = Callable[[StoreRequest], bool]


@dataclass
class _Fault:
    matches: Matcher
    status: int | None = None
    delay_seconds: float = 0.0
    gate: threading.Event | None = None
    times: int | None = 1  # None: every matching request
    dropped: bool = False  # a held request let go unanswered, never forwarded
    seen: list[StoreRequest] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)


def _wait_seen(fault: _Fault, count: int, timeout: float, what: str) -> list[StoreRequest]:
    """Wait (bounded) until `count` requests met `fault`; they are returned."""
    with fault.arrived:
        if not fault.arrived.wait_for(lambda: len(fault.seen) >= count, timeout):
            raise AssertionError(f"fewer than {count} request(s) {what} in {timeout:.0f}s")
        return list(fault.seen)


class Hold:
    """Requests kept by the front until `release()` forwards them or `drop()` lets them go
    unanswered and unforwarded (a write cut off with its writer); `wait_for(n)` waits
    until n have arrived."""

    def __init__(self, front: R2Front, fault: _Fault) -> None:
        self._front = front
        self._fault = fault

    @property
    def held(self) -> list[StoreRequest]:
        with self._fault.arrived:
            return list(self._fault.seen)

    def wait_for(self, count: int = 1, timeout: float = 120.0) -> list[StoreRequest]:
        return _wait_seen(self._fault, count, timeout, "reached the hold")

    def release(self) -> None:
        assert self._fault.gate is not None
        self._front.remove_fault(self._fault)
        self._fault.gate.set()

    def drop(self) -> None:
        self._fault.dropped = True
        self.release()


class Outage:
    """The requests an outage refused so far; `wait_refused(n)` waits until n were."""

    def __init__(self, fault: _Fault) -> None:
        self._fault = fault

    @property
    def refused(self) -> list[StoreRequest]:
        with self._fault.arrived:
            return list(self._fault.seen)

    def wait_refused(self, count: int, timeout: float = 120.0) -> list[StoreRequest]:
        with self._fault.arrived:
            if not self._fault.arrived.wait_for(lambda: len(self._fault.seen) >= count, timeout):
                raise AssertionError(
                    f"fewer than {count} requests met the outage in {timeout:.0f}s"
                )
            return list(self._fault.seen)


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path  # what the engine trusts (SSL_CERT_FILE)
    cert_file: Path
    key_file: Path


def make_loopback_tls(directory: Path) -> TlsFiles:
    """A throwaway CA and a server certificate for the IP 127.0.0.1."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "r2-front test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key_file.chmod(0o600)
    return files


def s3_error(status: int, code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{uuid.uuid4().hex}</RequestId></Error>"
    ).encode()


class R2Front:
    """The R2 front for one bucket and one token; use as a context manager."""

    def __init__(
        self,
        *,
        upstream_port: int,
        access_key_id: str,
        secret_access_key: str,
        tls: TlsFiles,
    ) -> None:
        self.upstream_port = upstream_port
        self.access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self.tls = tls
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._log: list[StoreRequest] = []
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> R2Front:
        server = ThreadingHTTPServer((LOOPBACK, 0), _make_handler(self))
        server.daemon_threads = True
        server.block_on_close = False
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        with self._lock:
            for fault in self._faults:
                if fault.gate is not None:
                    fault.gate.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def host_port(self) -> str:
        """`127.0.0.1:<port>`: an R2 endpoint's host as the README writes it (no scheme)."""
        assert self._server is not None
        return f"{LOOPBACK}:{self._server.server_address[1]}"

    # ----- faults ------------------------------------------------------------------------

    def fail(self, matches: Matcher, *, status: int = 503, times: int | None = 1) -> None:
        self._add(_Fault(matches, status=status, times=times))

    def delay(self, matches: Matcher, seconds: float, *, times: int | None = 1) -> None:
        self._add(_Fault(matches, delay_seconds=seconds, times=times))

    def hold(self, matches: Matcher, *, times: int | None = 1) -> Hold:
        fault = _Fault(matches, gate=threading.Event(), times=times)
        self._add(fault)
        return Hold(self, fault)

    @contextlib.contextmanager
    def outage(
        self, *, status: int = 503, starting_with: Matcher | None = None
    ) -> Iterator[Outage]:
        """Refuse every request while inside the block, from the first one that matches
        `starting_with` on (by default at once)."""
        started = starting_with is None

        def refuses(request: StoreRequest) -> bool:
            nonlocal started
            started = started or bool(starting_with and starting_with(request))
            return started

        fault = _Fault(refuses, status=status, times=None)
        self._add(fault)
        try:
            yield Outage(fault)
        finally:
            self.remove_fault(fault)

    def remove_fault(self, fault: _Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear_faults(self) -> None:
        with self._lock:
            faults, self._faults = self._faults, []
        for fault in faults:
            if fault.gate is not None:
                fault.gate.set()

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, request: StoreRequest) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    with fault.arrived:
                        fault.seen.append(request)
                        fault.arrived.notify_all()
                    return fault
        return None

    # ----- request log -------------------------------------------------------------------

    @property
    def requests(self) -> list[StoreRequest]:
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, request: StoreRequest) -> None:
        with self._lock:
            self._log.append(request)

    # ----- the checks R2 makes -----------------------------------------------------------

    def check_signature(
        self, method: str, raw_path: str, raw_query: str, headers: Any, body: bytes
    ) -> tuple[str, str] | None:
        """None if the request is signed as R2 wants, else (S3 error code, message)."""
        authorization = headers.get("Authorization", "")
        algorithm, _, rest = authorization.partition(" ")
        if algorithm != "AWS4-HMAC-SHA256":
            return "AccessDenied", "only AWS Signature V4 in the Authorization header"
        try:
            parts = dict(item.strip().split("=", 1) for item in rest.split(","))
            key_id, date, region, service, terminal = parts["Credential"].split("/")
            signed_headers = parts["SignedHeaders"].split(";")
            signature = parts["Signature"]
        except (KeyError, ValueError):
            return "AuthorizationHeaderMalformed", "malformed Authorization header"
        if key_id != self.access_key_id:
            return "InvalidAccessKeyId", "the access key id is not the bucket token's id"
        if region != R2_REGION or service != "s3" or terminal != "aws4_request":
            return "AuthorizationHeaderMalformed", f"credential scope region {region!r}"
        amz_date = headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.UTC
            )
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
        scope = f"{date}/{region}/{service}/{terminal}"
        to_sign = "\n".join(
            [algorithm, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = f"AWS4{self._secret_access_key}".encode()
        for step in (date, region, service, terminal):
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


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _attempt(headers: Any) -> int | None:
    match = re.search(r"attempt=(\d+)", headers.get("amz-sdk-request", ""))
    return int(match.group(1)) if match else None


def _make_handler(front: R2Front) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._handle()

        def do_HEAD(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            started = time.monotonic()
            try:
                self._answer()
            finally:
                if self._request is not None:
                    self._request.seconds = time.monotonic() - started

        _request: StoreRequest | None = None

        def _answer(self) -> None:
            body = _read_body(self)
            raw_path, _, raw_query = self.path.partition("?")
            bucket, _, key = raw_path.lstrip("/").partition("/")
            credential = re.search(
                r"Credential=([^/,]*)/[^/]*/([^/]*)/", self.headers.get("Authorization", "")
            )
            request = StoreRequest(
                method=self.command,
                bucket=unquote(bucket),
                key=unquote(key),
                query={
                    unquote(k): unquote(v)
                    for k, _, v in (p.partition("=") for p in raw_query.split("&") if p)
                },
                region=credential.group(2) if credential else None,
                access_key_id=credential.group(1) if credential else None,
                attempt=_attempt(self.headers),
                is_copy="x-amz-copy-source" in self.headers,
            )
            self._request = request
            front._record(request)
            refusal = front.check_signature(self.command, raw_path, raw_query, self.headers, body)
            if refusal is not None:
                request.outcome = f"refused: {refusal[0]}"
                self._send(403, {"Content-Type": "application/xml"}, s3_error(403, *refusal))
                return
            fault = front._take_fault(request)
            if fault is not None:
                if fault.gate is not None:
                    request.outcome = "held"
                    fault.gate.wait(HOLD_LIMIT_SECONDS)
                    if fault.dropped:
                        request.outcome = "dropped"
                        self.close_connection = True
                        return
                if fault.delay_seconds:
                    request.outcome = "delayed"
                    front._stopping.wait(fault.delay_seconds)
                if fault.status is not None:
                    request.outcome = f"failed {fault.status}"
                    code = _ERROR_CODES.get(fault.status, "InternalError")
                    message = "injected by the test's R2 front"
                    xml = s3_error(fault.status, code, message)
                    self._send(fault.status, {"Content-Type": "application/xml"}, xml)
                    return
            status, headers, payload = self._forward(body)
            request.status = status
            self._send(status, headers, payload)

        def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
            connection = http.client.HTTPConnection(LOOPBACK, front.upstream_port, timeout=120)
            try:
                connection.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                connection.putheader("Host", self.headers.get("Host", LOOPBACK))
                for name, value in self.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        connection.putheader(name, value)
                if body or self.command in ("PUT", "POST"):
                    connection.putheader("Content-Length", str(len(body)))
                connection.endheaders(body or None)
                response = connection.getresponse()
                payload = response.read()
                headers = {
                    name: value
                    for name, value in response.getheaders()
                    if name.lower() not in _HOP_BY_HOP or name.lower() == "content-length"
                }
                return response.status, headers, payload
            finally:
                connection.close()

        def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            try:
                self.send_response_only(status)
                for name, value in headers.items():
                    if name.lower() == "content-length":
                        continue
                    self.send_header(name, value)
                if self.command == "HEAD":
                    length = headers.get("Content-Length") or headers.get("content-length")
                    self.send_header("Content-Length", length or "0")
                else:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                self.close_connection = True  # the client is gone (killed, or gave up)

    return Handler

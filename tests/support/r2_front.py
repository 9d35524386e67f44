"""An R2-like front on 127.0.0.1 for a local S3 server, with faults on demand.

The engine's S3 backend (pulumi v3.274.0: gocloud.dev s3blob on the AWS SDK for Go v2)
talks to this front; the front checks each request the way R2 would and forwards it to
moto (tests/support/moto_server.py), which stores the objects.

Faithful to R2 where the engine meets it:
- HTTPS only. The certificate is for 127.0.0.1, from a throwaway CA the tests hand to
  Go with `SSL_CERT_FILE` (tests/support/loopback_tls.py), so the README's endpoint
  without a scheme (`endpoint=<account>.r2.cloudflarestorage.com`) is used as on R2:
  pulumi prefixes `https://` (pkg/backend/diy/backend.go, translateLegacyS3Params).
- Path-style addressing: the bucket is the first path segment, the only form that can
  reach an IP address (a virtual-hosted request would need `<bucket>.127.0.0.1`).
- AWS Signature V4, verified (tests/support/sigv4_check.py): the access key id must be
  the bucket token's id and the signature must verify with the SHA-256 hex of the
  token's value, which is how R2 turns an API token into S3 credentials
  (components/r2.py); the credential scope must name region `auto` and service `s3`.
  Refusals are 403s with S3's codes (InvalidAccessKeyId, SignatureDoesNotMatch, ...).
- Errors as S3 XML (`<Error><Code>…</Code>`), which the SDK classifies: 500
  InternalError and 503 SlowDown are retried by it.
Not modelled: R2's own quirks beyond these (other region names it may accept, rate
limits, its consistency timing); object storage is moto's.

Faults (`front.faults`, tests/support/store_faults.py) apply after the signature check.
Every request is logged (`front.requests`) with its operation, key, the region it was
signed for, the SDK's attempt number and what the front did with it.
"""

from __future__ import annotations

import http.client
import re
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from tests.support.loopback_tls import LOOPBACK, TlsFiles
from tests.support.sigv4_check import check_sigv4
from tests.support.store_faults import StoreFaults, StoreRequest

R2_REGION = "auto"
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


def s3_error(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{uuid.uuid4().hex}</RequestId></Error>"
    ).encode()


class R2Front:
    """The R2 front for one token (any bucket in moto); use as a context manager."""

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
        self.secret_access_key = secret_access_key
        self.tls = tls
        self.faults = StoreFaults()
        self.stopping = threading.Event()
        self._log_lock = threading.Lock()
        self._log: list[StoreRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

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
        self.stopping.set()
        self.faults.release_all()
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

    @property
    def requests(self) -> list[StoreRequest]:
        with self._log_lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def record(self, request: StoreRequest) -> None:
        with self._log_lock:
            self._log.append(request)


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
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's
        # algorithm and the client's delayed ACK stall every answer by ~40 ms.
        disable_nagle_algorithm = True

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
            front.record(request)
            refusal = check_sigv4(
                self.command,
                raw_path,
                raw_query,
                self.headers,
                body,
                access_key_id=front.access_key_id,
                secret_access_key=front.secret_access_key,
                region=R2_REGION,
            )
            if refusal is not None:
                request.outcome = f"refused: {refusal[0]}"
                self._send(403, {"Content-Type": "application/xml"}, s3_error(*refusal))
                return
            fault = front.faults.take(request)
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
                    front.stopping.wait(fault.delay_seconds)
                if fault.status is not None:
                    request.outcome = f"failed {fault.status}"
                    code = _ERROR_CODES.get(fault.status, "InternalError")
                    message = "injected by the test's R2 front"
                    xml = s3_error(code, message)
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

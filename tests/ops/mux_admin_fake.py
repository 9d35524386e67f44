"""A local stand-in for mux-server's admin pairing endpoint (facts section 5.2).

It enforces the documented contract of ``POST /v1/admin/pairings/token``:
404 when MUX_ADMIN_TOKEN is unset, 401 on a bearer token that is not an exact
match, 400 on a missing openclawId/channel or an unsupported channel, 409 on
an instance id conflict, and 200 with a one-time ``mpt_`` token otherwise.
Runs on 127.0.0.1 on a free port, in a thread, for one test.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PAIRING_PATH = "/v1/admin/pairings/token"
CHANNELS = ("telegram", "discord", "whatsapp")
DEFAULT_TTL_SEC = 900
MAX_TTL_SEC = 3600


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeMuxAdmin:
    """Server behaviour knobs plus what it received."""

    admin_token: str | None
    telegram_bot_username: str | None = None
    # An older mux may support fewer channels than the CLI offers.
    supported_channels: tuple[str, ...] = CHANNELS
    conflicting_openclaw_ids: set[str] = field(default_factory=set)
    # Misbehaviours, to prove the client never follows or repeats them.
    redirect_to: str | None = None
    fail_with_status_echoing_auth: int | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    base_url: str = ""

    def respond(
        self, path: str, headers: dict[str, str], raw_body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        try:
            body: Any = json.loads(raw_body or b"null")
        except ValueError:
            body = None
        self.requests.append(RecordedRequest(path, headers, body))
        if path != PAIRING_PATH or self.admin_token is None:
            return 404, {"ok": False, "error": "not found"}, {}
        if self.redirect_to is not None:
            return 307, {"ok": False, "error": "moved"}, {"Location": self.redirect_to}
        authorization = headers.get("authorization", "")
        if self.fail_with_status_echoing_auth is not None:
            return (
                self.fail_with_status_echoing_auth,
                {"ok": False, "error": f"internal failure handling header {authorization}"},
                {},
            )
        if authorization != f"Bearer {self.admin_token}":
            return 401, {"ok": False, "error": "unauthorized"}, {}
        if not isinstance(body, dict):
            return 400, {"ok": False, "error": "invalid JSON body"}, {}
        openclaw_id = body.get("openclawId")
        channel = body.get("channel")
        if not openclaw_id:
            return 400, {"ok": False, "error": "openclawId is required"}, {}
        if not channel:
            return 400, {"ok": False, "error": "channel is required"}, {}
        if channel not in self.supported_channels:
            return 400, {"ok": False, "error": "unsupported channel for token pairing"}, {}
        if body.get("inboundUrl") and openclaw_id in self.conflicting_openclaw_ids:
            return 409, {"ok": False, "error": "instance id conflict"}, {}
        ttl_sec = min(int(body.get("ttlSec") or DEFAULT_TTL_SEC), MAX_TTL_SEC)
        token = "mpt_" + base64.urlsafe_b64encode(os.urandom(24)).rstrip(b"=").decode()
        deep_link = (
            f"https://t.me/{self.telegram_bot_username}?start={token}"
            if self.telegram_bot_username and channel == "telegram"
            else None
        )
        return (
            200,
            {
                "ok": True,
                "channel": channel,
                "token": token,
                "expiresAtMs": int(time.time() * 1000) + ttl_sec * 1000,
                "startCommand": f"/start {token}" if channel == "telegram" else None,
                "deepLink": deep_link,
            },
            {},
        )


def _handler_for(fake: FakeMuxAdmin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, payload, extra_headers = fake.respond(self.path, headers, raw_body)
            encoded = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            for name, value in extra_headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(encoded)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@contextmanager
def running_fake_mux(fake: FakeMuxAdmin) -> Iterator[FakeMuxAdmin]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
    host, port = server.server_address[:2]
    fake.base_url = f"http://{host}:{port}"
    # A short poll interval keeps shutdown() quick.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def silent_listener() -> Iterator[str]:
    """A base URL whose server accepts connections but never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        host, port = listener.getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        listener.close()


def refused_base_url() -> str:
    """A loopback URL on a port nothing listens on (connection refused)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        host, port = probe.getsockname()[:2]
    return f"http://{host}:{port}"

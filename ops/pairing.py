"""Mint a mux pairing token through the mux-server admin API.

``POST <mux baseUrl>/v1/admin/pairings/token`` with the mux admin token as a
bearer token. The request also upserts the tenant's instance row (openclawId and
inbound URL), so pairing works even before the tenant's gateway registered.
The openclawId comes from the stack outputs, where the program derived it
offline from the tenant's MASTER_KEY, so no SSH into the CVM is needed.

The admin token is a long-lived credential for the whole mux: it is sent only
over HTTPS (plain HTTP only to loopback, for local tests), never along a
redirect, and it is scrubbed from anything the server echoes back.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from components.mux_protocol import MUX_CHANNEL_NAMES, MUX_INBOUND_TIMEOUT_MS
from ops import ConfigError, OperationError

SUPPORTED_CHANNELS: Final = MUX_CHANNEL_NAMES
PAIRING_TOKEN_PATH: Final = "/v1/admin/pairings/token"  # noqa: S105 - a URL path
# Defaults of mux-pair-token.sh / mux-server; the server clamps ttlSec to 3600.
DEFAULT_TTL_SEC: Final = 900
MAX_TTL_SEC: Final = 3600
# Pairing upserts the tenant's row, inboundTimeoutMs included: send what the
# tenant's gateway registers with, so pairing does not change it (mux-pair-token.sh
# sent 15000, which cut the timeout in half until the next registration).
DEFAULT_INBOUND_TIMEOUT_MS: Final = MUX_INBOUND_TIMEOUT_MS
DEFAULT_HTTP_TIMEOUT_SEC: Final = 15.0
# Enough of an error body to explain it, short enough to stay one line.
_MAX_SERVER_MESSAGE_CHARS: Final = 200
# A pairing token answer is a few hundred bytes; the mux's body is read no further.
MAX_RESPONSE_BYTES: Final = 64 * 1024


class PairingError(OperationError):
    """mux refused or could not be reached; the message is one safe line."""


def validate_pairing_options(
    *, channel: str, ttl_sec: int, inbound_timeout_ms: int, session_key: str | None
) -> None:
    """Usage errors (exit 2) caught before any outputs are loaded or requests sent."""
    if channel not in SUPPORTED_CHANNELS:
        raise ConfigError(
            f"unsupported channel {channel!r}; choose one of {', '.join(SUPPORTED_CHANNELS)}"
        )
    if not 1 <= ttl_sec <= MAX_TTL_SEC:
        raise ConfigError(f"--ttl-sec must be between 1 and {MAX_TTL_SEC}, got {ttl_sec}")
    if inbound_timeout_ms < 1:
        raise ConfigError(
            f"--inbound-timeout-ms must be a positive number, got {inbound_timeout_ms}"
        )
    if session_key is not None and not session_key.strip():
        raise ConfigError("--session-key must not be empty")


def check_channel_is_served(
    channel: str, mux_name: str, mux_channels: tuple[str, ...] | None
) -> str | None:
    """Refuse a channel the mux is not configured to serve; a warning if unknown.

    mux-server mints a token for any channel it knows, even one it cannot
    receive on (Discord without a bot token, WhatsApp without linked
    credentials): nobody could redeem it. Outputs from before the channel list
    was exported cannot be checked; the returned warning says so.
    """
    if mux_channels is None:
        return (
            f"warning: the stack outputs do not list the channels mux {mux_name!r} runs "
            f"(outputs from an older program; run `pulumi up` to add them), so it is not "
            f"checked that it serves {channel}"
        )
    if channel not in mux_channels:
        runs = ", ".join(mux_channels) or "no channel"
        raise ConfigError(
            f"mux {mux_name!r} does not run {channel}, only {runs} (muxChannels); a "
            f"{channel} pairing token could never be redeemed: add {channel} to "
            "muxChannels and redeploy the mux first"
        )
    return None


@dataclass(frozen=True)
class PairingRequest:
    """The JSON body of a pairing-token request."""

    openclaw_id: str
    inbound_url: str
    channel: str
    inbound_timeout_ms: int = DEFAULT_INBOUND_TIMEOUT_MS
    ttl_sec: int = DEFAULT_TTL_SEC
    session_key: str | None = None

    def __post_init__(self) -> None:
        validate_pairing_options(
            channel=self.channel,
            ttl_sec=self.ttl_sec,
            inbound_timeout_ms=self.inbound_timeout_ms,
            session_key=self.session_key,
        )

    def to_json_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "openclawId": self.openclaw_id,
            "inboundUrl": self.inbound_url,
            "inboundTimeoutMs": self.inbound_timeout_ms,
            "channel": self.channel,
            "ttlSec": self.ttl_sec,
        }
        # Like mux-pair-token.sh: sessionKey only when the operator gave one.
        if self.session_key is not None:
            body["sessionKey"] = self.session_key
        return body


@dataclass(frozen=True)
class PairingToken:
    """A minted one-time pairing token as mux returned it."""

    channel: str
    token: str
    expires_at_ms: int
    start_command: str | None
    deep_link: str | None

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at_ms / 1000, tz=UTC)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would replay the Authorization header to wherever a redirect
    # points; returning None turns every 3xx into an HTTPError instead.
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def _is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def pairing_token_url(mux_base_url: str) -> str:
    """The admin endpoint under ``mux_base_url``; refuses to send the token in clear."""
    parsed = urllib.parse.urlsplit(mux_base_url)
    if parsed.scheme == "http" and _is_loopback_host(parsed.hostname):
        pass  # local mux (tests, port-forward): nothing leaves the machine
    elif parsed.scheme != "https" or not parsed.hostname:
        raise ConfigError(
            f"mux baseUrl {mux_base_url!r} must be an https:// URL (plain http only to "
            "localhost), so the admin token is never sent in clear"
        )
    return mux_base_url.rstrip("/") + PAIRING_TOKEN_PATH


class _Scrubber:
    """Removes the admin token from any text that is about to be shown."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def __call__(self, text: str) -> str:
        return text.replace(self._secret, "<redacted>") if self._secret else text


def _server_message(body: bytes, scrub: _Scrubber) -> str:
    """The ``error`` field of a mux JSON error, else the start of the body, one line."""
    text = body.decode("utf-8", errors="replace")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        text = document["error"]
    text = " ".join(scrub(text).split())
    if len(text) > _MAX_SERVER_MESSAGE_CHARS:
        text = text[:_MAX_SERVER_MESSAGE_CHARS] + "..."
    return text or "no error message"


def _error_for_status(
    status: int, message: str, url: str, request: PairingRequest, headers: Any
) -> PairingError:
    if status == 400:
        return PairingError(f"mux rejected the pairing request (HTTP 400): {message}")
    if status == 401:
        return PairingError(
            "mux rejected the admin token (HTTP 401): muxSecrets.adminToken does not match "
            "MUX_ADMIN_TOKEN on the mux CVM; redeploy the stack so both agree"
        )
    if status == 404:
        return PairingError(
            f"mux admin API is disabled or absent at {url} (HTTP 404): MUX_ADMIN_TOKEN is "
            "not set on the mux CVM, or the baseUrl is not a mux-server"
        )
    if status == 409:
        return PairingError(
            f"mux reports an instance id conflict for openclawId {request.openclaw_id} "
            f"(HTTP 409): {message}"
        )
    if 300 <= status < 400:
        location = headers.get("Location", "?") if headers is not None else "?"
        return PairingError(
            f"mux answered with a redirect (HTTP {status} to {location}); not following it "
            "with the admin token: check mux baseUrl in the stack outputs"
        )
    return PairingError(f"mux failed to mint a pairing token (HTTP {status}): {message}")


def _parse_success(body: bytes, channel: str) -> PairingToken:
    try:
        document = json.loads(body.decode("utf-8"))
    except ValueError:
        raise PairingError("mux answered HTTP 200 with a body that is not JSON") from None
    if not isinstance(document, dict) or document.get("ok") is not True:
        raise PairingError("mux answered HTTP 200 without ok:true")
    token = document.get("token")
    expires_at_ms = document.get("expiresAtMs")
    start_command = document.get("startCommand")
    deep_link = document.get("deepLink")
    if not isinstance(token, str) or not token:
        raise PairingError("mux answered HTTP 200 without a token")
    if not isinstance(expires_at_ms, int) or isinstance(expires_at_ms, bool):
        raise PairingError("mux answered HTTP 200 without a numeric expiresAtMs")
    if not isinstance(start_command, str | None) or not isinstance(deep_link, str | None):
        raise PairingError("mux answered HTTP 200 with a malformed startCommand or deepLink")
    returned_channel = document.get("channel")
    return PairingToken(
        channel=returned_channel if isinstance(returned_channel, str) else channel,
        token=token,
        expires_at_ms=expires_at_ms,
        start_command=start_command,
        deep_link=deep_link,
    )


def mint_pairing_token(
    mux_base_url: str,
    admin_token: str,
    request: PairingRequest,
    *,
    timeout_sec: float = DEFAULT_HTTP_TIMEOUT_SEC,
) -> PairingToken:
    """Ask mux for a one-time pairing token; raises PairingError on any failure."""
    url = pairing_token_url(mux_base_url)
    scrub = _Scrubber(admin_token)
    http_request = urllib.request.Request(  # noqa: S310 - scheme checked by pairing_token_url
        url,
        data=json.dumps(request.to_json_body(), separators=(",", ":")).encode("utf-8"),
        method="POST",
        headers={
            "Authorization": f"Bearer {admin_token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    opener = urllib.request.build_opener(_RefuseRedirects)
    try:
        with opener.open(http_request, timeout=timeout_sec) as response:
            body = response.read(MAX_RESPONSE_BYTES + 1)
        if len(body) > MAX_RESPONSE_BYTES:
            raise PairingError(f"mux at {url} answered with more than {MAX_RESPONSE_BYTES} bytes")
    except urllib.error.HTTPError as error:
        with error:
            error_body = error.read(MAX_RESPONSE_BYTES) if error.fp is not None else b""
        raise _error_for_status(
            error.code, _server_message(error_body, scrub), url, request, error.headers
        ) from None
    except urllib.error.URLError as error:
        raise _unreachable(url, error.reason, timeout_sec, scrub) from None
    except (TimeoutError, OSError, http.client.HTTPException) as error:
        # Raised while reading the response, after the connection was made.
        raise _unreachable(url, error, timeout_sec, scrub) from None
    return _parse_success(body, request.channel)


def _unreachable(url: str, reason: object, timeout_sec: float, scrub: _Scrubber) -> PairingError:
    if isinstance(reason, TimeoutError | socket.timeout):
        return PairingError(f"mux at {url} did not answer within {timeout_sec:g} s")
    if isinstance(reason, ConnectionRefusedError):
        return PairingError(f"cannot reach mux at {url}: connection refused")
    if isinstance(reason, ssl.SSLError):
        return PairingError(f"TLS handshake with mux at {url} failed: {scrub(str(reason))}")
    if isinstance(reason, socket.gaierror):
        return PairingError(f"cannot resolve the mux host in {url}: {reason.strerror or reason}")
    if isinstance(reason, http.client.HTTPException | ConnectionError):
        return PairingError(f"mux at {url} closed the connection without a valid HTTP response")
    detail = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
    return PairingError(f"cannot reach mux at {url}: {scrub(detail)}")


def format_relative(delta_sec: float) -> str:
    """'in 14m 59s' / '2m 3s ago' style, to eyeball whether a TTL is sane."""
    seconds = round(abs(delta_sec))
    hours, remainder = divmod(seconds, 3600)
    minutes, seconds = divmod(remainder, 60)
    if hours:
        text = f"{hours}h {minutes}m"
    elif minutes:
        text = f"{minutes}m {seconds}s"
    else:
        text = f"{seconds}s"
    return f"in {text}" if delta_sec >= 0 else f"{text} ago"


def format_pairing_token(tenant_name: str, token: PairingToken, now: datetime) -> str:
    """What `ops pair` prints: token, expiry, and how the user claims it."""
    expires = token.expires_at
    lines = [
        f"Pairing token for tenant {tenant_name!r} on {token.channel} (one-time use):",
        f"  token:   {token.token}",
        f"  expires: {expires.strftime('%Y-%m-%dT%H:%M:%SZ')} "
        f"({format_relative((expires - now).total_seconds())})",
    ]
    if token.start_command:
        lines.append(f"  send:    {token.start_command}")
    else:
        lines.append("  send:    the token itself as a message in the chat to pair")
    if token.deep_link:
        lines.append(f"  link:    {token.deep_link}")
    return "\n".join(lines)

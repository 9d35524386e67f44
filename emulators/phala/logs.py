"""Container logs for the Phala API emulator: what `phala logs <container> --cvm-id X` reads.

Faithful to what the pinned CLI (npm `phala@1.1.18`, `node_modules/phala/dist/index.js`)
calls and validates in container mode:

1. `GET /cvms/{id}/composition` through the API client (X-API-Key). The CLI reads it
   unvalidated; the shape here is the SDK's composition schema: `{is_online, is_public,
   error, docker_compose_file, manifest_version, version, runner, features, containers:
   [{id, names, image, image_id, command, created, state, status, log_endpoint}]}`. It
   keeps the containers whose `names` hold the name or `/name` (no id-prefix match in
   this mode), then the first with a `log_endpoint`; none means "No log endpoints".
2. A plain `fetch` of that absolute `log_endpoint` (no API key) with the query
   `[follow&][text&][bare&][tail=N&lines=N&][timestamps&]ansi`. Container mode never
   sends `text` or `bare`, so the body is NDJSON `{"channel", "message"}` with the
   message base64-encoded, as the dstack guest agent sends it; the CLI decodes
   base64-looking messages, prints stdout-channel ones to stdout and stderr-channel
   ones only with `--stderr`. With `follow` the answer stays open and streams.

Not faithful (the CLI cannot tell): `since`/`until` are ignored; container names are
the compose `container_name`, else `app-<service>-1`; with `public_logs` false the
containers carry `log_endpoint: null` (the real gateway's behaviour there is unknown;
the CLI then warns about public_logs from `GET /cvms/{id}`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import yaml

LOGS_PATH_PREFIX = "/guest-agent/"  # + <app_id>/logs/<container>
CHANNELS = ("stdout", "stderr")


@dataclass(frozen=True)
class LogEntry:
    channel: str
    message: str
    at: datetime


def compose_containers(docker_compose_file: str) -> list[tuple[str, str]]:
    """(container name, image) for each compose service, in file order."""
    try:
        document = yaml.safe_load(docker_compose_file) or {}
    except yaml.YAMLError:
        return []
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict):
        return []
    names = []
    for service, spec in services.items():
        fields = spec if isinstance(spec, dict) else {}
        explicit = fields.get("container_name")
        names.append(
            (str(explicit) if explicit else f"app-{service}-1", str(fields.get("image", "")))
        )
    return names


class ContainerLogs:
    """Log lines per (CVM app_id, container), appended by tests; thread-safe."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], list[LogEntry]] = {}
        self._changed = threading.Condition()

    def append(self, app_id: str, container: str, message: str, channel: str) -> None:
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
        with self._changed:
            entry = LogEntry(channel, message, datetime.now(UTC))
            self._entries.setdefault((app_id, container), []).append(entry)
            self._changed.notify_all()

    def snapshot(self, app_id: str, container: str) -> list[LogEntry]:
        with self._changed:
            return list(self._entries.get((app_id, container), []))

    def wait_beyond(self, app_id: str, container: str, count: int, timeout: float) -> None:
        """Return when the container has more than `count` entries, or after `timeout`."""
        with self._changed:
            self._changed.wait_for(
                lambda: len(self._entries.get((app_id, container), [])) > count, timeout
            )

    def wake_all(self) -> None:
        with self._changed:
            self._changed.notify_all()


def composition_view(
    *,
    app_id: str,
    docker_compose_file: str,
    running: bool,
    public_logs: bool,
    log_base_url: str,
    created: int,
) -> dict[str, Any]:
    containers = [
        {
            "id": hashlib.sha256(f"{app_id}/{name}".encode()).hexdigest(),
            "names": [f"/{name}"],
            "image": image,
            "image_id": "sha256:" + hashlib.sha256(image.encode()).hexdigest(),
            "command": None,
            "created": created,
            "state": "running" if running else "exited",
            "status": "Up" if running else "Exited (0)",
            "log_endpoint": f"{log_base_url}{LOGS_PATH_PREFIX}{app_id}/logs/{name}"
            if public_logs
            else None,
        }
        for name, image in compose_containers(docker_compose_file)
    ]
    return {
        "is_online": running,
        "is_public": True,
        "error": None,
        "docker_compose_file": docker_compose_file,
        "manifest_version": 2,
        "version": "1.0.0",
        "runner": "docker-compose",
        "features": ["kms", "tproxy-net"],
        "containers": containers,
    }


def render_entry(entry: LogEntry, flags: Mapping[str, list[str]]) -> bytes:
    message = entry.message
    if "timestamps" in flags:
        message = f"{entry.at.isoformat().replace('+00:00', 'Z')} {message}"
    if "bare" in flags:
        return message.encode()
    text = message if "text" in flags else base64.b64encode(message.encode()).decode()
    return (json.dumps({"channel": entry.channel, "message": text}) + "\n").encode()


def tail_of(entries: list[LogEntry], flags: Mapping[str, list[str]]) -> list[LogEntry]:
    tail = (flags.get("tail") or [""])[0]
    if tail.isdigit():
        return entries[-int(tail) :] if int(tail) else []
    return entries


def serve_logs(
    handler: BaseHTTPRequestHandler,
    logs: ContainerLogs,
    app_id: str,
    container: str,
    flags: Mapping[str, list[str]],
    stopping: threading.Event,
) -> None:
    """Answer one log request; with `follow`, stream until the client or emulator stops."""
    entries = tail_of(logs.snapshot(app_id, container), flags)
    seen = len(logs.snapshot(app_id, container))
    handler.close_connection = True  # no Content-Length: the body ends with the connection
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain; charset=utf-8")
    handler.send_header("Connection", "close")
    handler.end_headers()
    try:
        handler.wfile.write(b"".join(render_entry(entry, flags) for entry in entries))
        handler.wfile.flush()
        while "follow" in flags and not stopping.is_set():
            logs.wait_beyond(app_id, container, seen, timeout=0.5)
            current = logs.snapshot(app_id, container)
            for entry in current[seen:]:
                handler.wfile.write(render_entry(entry, flags))
            handler.wfile.flush()
            seen = len(current)
    except (BrokenPipeError, ConnectionResetError):
        return  # the client stopped reading: what Ctrl-C on `phala logs -f` does

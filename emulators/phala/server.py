"""The emulated Phala Cloud API as a loopback HTTP server, and the handle tests hold.

`PhalaCloudEmulator` serves `routes.route` on 127.0.0.1 (never another address), keeps the
request log, and offers what a test or the sandbox needs to steer the service: faults,
fates (stuck, failing), out-of-band changes, and snapshots of the state. HTTP/1.1 with
keep-alive like the real API (undici and urllib reuse connections); every reply carries
Content-Length, and idle connections are dropped after a timeout.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from emulators.phala import routes
from emulators.phala.backend import PhalaBackend
from emulators.phala.behaviour import Behaviour, Timings
from emulators.phala.errors import ApiError
from emulators.phala.logs import LOGS_PATH_PREFIX, ContainerLogs, serve_logs
from emulators.phala.models import (
    DEFAULT_GATEWAY_BASE_DOMAIN,
    STATUS_ERROR,
    EmulatedCvm,
    RequestRecord,
)
from emulators.phala.published import (
    PUBLISHED_PATH_PREFIX,
    health_url_template,
    published_answer,
)
from emulators.phala.responses import API_VERSION_CURRENT, SUPPORTED_API_VERSIONS

LOOPBACK_HOST = "127.0.0.1"
API_PATH_PREFIX = "/api/v1"
DEFAULT_API_KEY = "phak_emulator_test_key"


class PhalaCloudEmulator:
    """In-memory Phala Cloud API on 127.0.0.1. Use as a context manager or start()/stop().

    `behaviour` chooses the modes and timings (behaviour.py); `provision_seconds` and
    `update_seconds` are shorthands for its timings: the boot of a new CVM, and an
    update's whole restart, spread over its phases."""

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        port: int = 0,
        behaviour: Behaviour | None = None,
        provision_seconds: float | None = None,
        update_seconds: float | None = None,
        delete_seconds: float | None = None,
        gateway_base_domain: str = DEFAULT_GATEWAY_BASE_DOMAIN,
        cloud_username: str = "emulator-user",
        workspace_name: str = "emulator-workspace",
        on_request: Callable[[RequestRecord], None] | None = None,
    ) -> None:
        behaviour = behaviour or Behaviour()
        if (
            provision_seconds is not None
            or update_seconds is not None
            or delete_seconds is not None
        ):
            current = behaviour.timings
            update = (
                update_seconds
                if update_seconds is not None
                else current.update_grace + current.stop + current.stopped + current.restart_boot
            )
            timings = Timings.for_update(
                boot=provision_seconds if provision_seconds is not None else current.boot,
                update=update,
                delete=delete_seconds if delete_seconds is not None else current.delete,
            )
            behaviour = replace(behaviour, timings=timings)
        self.api_key = api_key
        # Called with each request once it is answered (`python -m emulators.phala
        # --request-log` writes them to a file another process reads).
        self.on_request = on_request
        self.backend = PhalaBackend(behaviour, gateway_base_domain=gateway_base_domain)
        self.identity = (cloud_username, workspace_name)
        self.container_logs = ContainerLogs()
        self._requested_port = port
        self._stopping = threading.Event()
        self._release = threading.Event()  # ends the injected delays under way
        self._in_flight: list[tuple[str, str]] = []  # (method, path) being answered now
        self._in_flight_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def behaviour(self) -> Behaviour:
        return self.backend.behaviour

    def configure(self, **changes: Any) -> Behaviour:
        """Change the behaviour from now on (operations under way keep their schedule);
        a `Behaviour` field per keyword, or `timings` fields by their own names."""
        timing_names = set(Timings.__dataclass_fields__)
        timing_changes = {k: changes.pop(k) for k in list(changes) if k in timing_names}
        with self.backend.lock:
            behaviour = replace(self.backend.behaviour, **changes)
            if timing_changes:
                behaviour = replace(behaviour, timings=replace(behaviour.timings, **timing_changes))
            self.backend.behaviour = behaviour
        return behaviour

    @property
    def gateway_base_domain(self) -> str:
        return self.backend.gateway_base_domain

    # ----- lifecycle -------------------------------------------------------------------

    def start(self) -> PhalaCloudEmulator:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((LOOPBACK_HOST, self._requested_port), _make_handler(self))
        server.daemon_threads = True
        # server_close() otherwise joins every handler thread, and one parked on an idle
        # keep-alive connection would make stop() hang.
        server.block_on_close = False
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, name="phala-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in an injected delay
        self.container_logs.wake_all()  # and streams of `phala logs --follow`
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> PhalaCloudEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator is not running")
        return int(self._server.server_address[1])

    @property
    def api_prefix(self) -> str:
        return f"http://{LOOPBACK_HOST}:{self.port}{API_PATH_PREFIX}"

    @property
    def health_url_template(self) -> str:
        """Where the driver's health checks find each CVM's services (published.py)."""
        return health_url_template(LOOPBACK_HOST, self.port)

    def cli_env(self, home: Path | str) -> dict[str, str]:
        """A minimal, clean environment for running the real CLI against this emulator."""
        return cli_environment(self.api_prefix, self.api_key, home)

    def append_container_log(
        self, identifier: str, container: str, message: str, *, channel: str = "stdout"
    ) -> None:
        """Add a line to a container's log (include the newline, as docker does)."""
        app_id = self.backend.require(identifier).app_id
        self.container_logs.append(app_id, container, message, channel)

    # ----- faults and fates --------------------------------------------------------------

    def inject_error(
        self,
        method: str | None,
        path_regex: str,
        *,
        status: int = 500,
        detail: Any = "Internal Server Error (injected)",
        headers: Mapping[str, str] | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer matching calls with `status`, `{"detail": detail}` and `headers`.

        `path_regex` is searched in the path relative to the API prefix (e.g. r"^/cvms$").
        `times=None` means forever. The CLI's HTTP client (ofetch) retries GETs once on
        408/409/425/429/500/502/503/504, so a GET needs `times=2` to reach the CLI."""
        self.backend.faults.add_error(
            _norm_method(method), path_regex, status, detail, dict(headers or {}), times
        )

    def inject_delay(
        self, method: str | None, path_regex: str, seconds: float, *, times: int | None = 1
    ) -> None:
        """Sleep `seconds` before answering matching calls (the CLI times out at 30 s)."""
        self._release.clear()
        self.backend.faults.add_delay(_norm_method(method), path_regex, seconds, times)

    def release_delays(self) -> None:
        """Answer every request held by an injected delay now."""
        self._release.set()

    def _delay(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not (self._stopping.is_set() or self._release.is_set()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._stopping.wait(min(remaining, 0.05))

    def make_stuck(self, identifier: str) -> None:
        """Hold a CVM where it is on its way (or, for a name not yet created, at the start
        of its boot) forever."""
        self.backend.make_stuck(identifier)

    def hold_next_operation(self, name: str) -> None:
        """Hold the next operation of the CVM named `name` at its first phase (for an
        update: still "running", in progress), without touching where it is now."""
        self.backend.hold_next_operation(name)

    def make_failing(
        self,
        identifier: str,
        *,
        status: str = STATUS_ERROR,
        boot_error: str = "boot failed (injected)",
    ) -> None:
        """End a CVM's current or next operation in a failure status instead of running
        (at once if it is settled); a name not yet known fails when it is created."""
        self.backend.make_failing(identifier, status, boot_error)

    def delete_behind_back(self, identifier: str) -> None:
        """Remove a CVM at once, as if someone deleted it in the dashboard long ago."""
        self.backend.delete_behind_back(identifier)

    def change_compose_externally(
        self,
        identifier: str,
        docker_compose_file: str,
        *,
        env: Mapping[str, str] | None = None,
        pre_launch_script: str | None = None,
    ) -> str:
        """Change a CVM's compose (and optionally env) outside any client; the new hash."""
        return self.backend.change_compose_externally(
            identifier, docker_compose_file, env, pre_launch_script
        )

    def set_status(self, identifier: str, status: str, *, in_progress: bool = False) -> None:
        """Force a CVM's status (e.g. "stopped") and cancel its operation."""
        self.backend.set_status(identifier, status, in_progress)

    def finish_pending(self, identifier: str) -> None:
        """End a CVM's operation now, with the outcome it was going to have."""
        self.backend.finish_pending(identifier)

    def step(self, identifier: str) -> str:
        """Begin a CVM's next phase now; returns the status it shows then."""
        return self.backend.step(identifier)

    def reset_faults(self) -> None:
        """Drop injected errors, delays and pending fates (existing CVM states stay)."""
        self.backend.faults.clear()

    # ----- request log -----------------------------------------------------------------

    @property
    def request_log(self) -> list[RequestRecord]:
        return self.backend.log()

    def requests(
        self, method: str | None = None, path_regex: str | None = None
    ) -> list[RequestRecord]:
        wanted_method = _norm_method(method)
        pattern = re.compile(path_regex) if path_regex is not None else None
        return [
            record
            for record in self.backend.log()
            if (wanted_method is None or record.method == wanted_method)
            and (pattern is None or pattern.search(record.path))
        ]

    def count(self, method: str | None = None, path_regex: str | None = None) -> int:
        return len(self.requests(method, path_regex))

    def in_flight(self, method: str | None = None, path_regex: str | None = None) -> int:
        """Requests received and not yet answered (e.g. held by an injected delay)."""
        wanted_method = _norm_method(method)
        pattern = re.compile(path_regex) if path_regex is not None else None
        with self._in_flight_lock:
            return sum(
                1
                for verb, path in self._in_flight
                if (wanted_method is None or verb == wanted_method)
                and (pattern is None or pattern.search(path))
            )

    def clear_log(self) -> None:
        self.backend.clear_log()

    def _record(self, record: RequestRecord) -> None:
        self.backend.append_log(record)
        if self.on_request is not None:
            self.on_request(record)

    # ----- inspection ------------------------------------------------------------------

    def cvms(self) -> list[EmulatedCvm]:
        """Snapshots of all CVMs (tombstones included), oldest first, lifecycle applied."""
        with self.backend.lock:
            return [self.backend.snapshot(cvm) for cvm in self.backend.all_cvms()]

    def cvm_by_name(self, name: str) -> EmulatedCvm | None:
        """The newest CVM with this name that is not deleted."""
        with self.backend.lock:
            for cvm in reversed(self.backend.all_cvms()):
                if cvm.name == name and not cvm.deleted:
                    return self.backend.snapshot(cvm)
        return None

    def cvm(self, identifier: str) -> EmulatedCvm | None:
        """Look a CVM up by any id form the API accepts."""
        with self.backend.lock:
            found = self.backend.find(identifier)
            return None if found is None else self.backend.snapshot(found)

    def decrypted_env(self, cvm: EmulatedCvm | str) -> dict[str, str]:
        """The env currently in effect (decrypted), as an ordered str->str dict."""
        identifier = cvm if isinstance(cvm, str) else str(cvm.numeric_id)
        with self.backend.lock:
            return dict(self.backend.require(identifier).env)


def cli_environment(api_prefix: str, api_key: str, home: Path | str) -> dict[str, str]:
    """A minimal, clean environment for running the real CLI against an emulator.

    Built from scratch (not os.environ) so a developer's own PHALA_* variables,
    credentials or proxy settings can never leak into a test or the sandbox."""
    home_path = Path(home)
    home_path.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home_path),
        "PHALA_CLOUD_API_PREFIX": api_prefix,
        "PHALA_CLOUD_API_KEY": api_key,
        "PHALA_DISABLE_UPDATE_CHECK": "1",
        "NO_COLOR": "1",
        "LANG": "C.UTF-8",
    }


def _norm_method(method: str | None) -> str | None:
    return method.upper() if method else None


def _make_handler(emulator: PhalaCloudEmulator) -> type[BaseHTTPRequestHandler]:
    backend = emulator.backend

    class PhalaApiHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30
        server_version = "PhalaCloudEmulator/2"

        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def do_PATCH(self) -> None:
            self._dispatch()

        def do_PUT(self) -> None:
            self._dispatch()

        def do_DELETE(self) -> None:
            self._dispatch()

        def log_message(self, format: str, *args: Any) -> None:
            return  # the emulator keeps its own log

        def _dispatch(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query, keep_blank_values=True)
            if self.command == "GET" and url.path.startswith(LOGS_PATH_PREFIX):
                self._serve_container_logs(url.path, query)
                return
            if self.command == "GET" and url.path.startswith(PUBLISHED_PATH_PREFIX):
                self._reply(*published_answer(backend, url.path), {})
                return
            raw_body = self._read_body()
            body: Any = None
            headers: dict[str, str] = {}
            version = self.headers.get("X-Phala-Version") or API_VERSION_CURRENT
            if version not in SUPPORTED_API_VERSIONS:
                version = API_VERSION_CURRENT
            relative_path = url.path
            try:
                if raw_body:
                    try:
                        body = json.loads(raw_body)
                    except json.JSONDecodeError as error:
                        raise ApiError(HTTPStatus.BAD_REQUEST, "Body is not valid JSON") from error
                if not url.path.startswith(API_PATH_PREFIX + "/"):
                    raise ApiError(HTTPStatus.NOT_FOUND, "Not Found")
                relative_path = url.path[len(API_PATH_PREFIX) :]
                flight = (self.command, relative_path)
                with emulator._in_flight_lock:
                    emulator._in_flight.append(flight)
                try:
                    status, payload, headers = self._route(relative_path, query, version, body)
                finally:
                    with emulator._in_flight_lock:
                        emulator._in_flight.remove(flight)
            except ApiError as error:
                placement = backend.behaviour.structured_placement
                status, payload, headers = error.status, error.body(placement), error.headers
            except Exception as error:  # a bug in the emulator must still answer
                status, payload = 500, {"detail": f"emulator error: {error!r}"}
            emulator._record(
                RequestRecord(
                    method=self.command,
                    path=relative_path,
                    query=query,
                    api_version=self.headers.get("X-Phala-Version"),
                    body=body
                    if body is not None
                    else (raw_body.decode("utf-8", "replace") or None),
                    status=int(status),
                    at=time.time(),
                )
            )
            self._reply(int(status), payload, headers)

        def _route(
            self, relative_path: str, query: dict[str, list[str]], version: str, body: Any
        ) -> tuple[int, Any, dict[str, str]]:
            return routes.route(
                backend,
                api_key=emulator.api_key,
                method=self.command,
                path=relative_path,
                query=query,
                api_version=version,
                given_key=self.headers.get("X-API-Key"),
                body=body,
                identity=emulator.identity,
                log_base_url=f"http://{LOOPBACK_HOST}:{emulator.port}",
                wait=emulator._delay,
            )

        def _serve_container_logs(self, path: str, query: dict[str, list[str]]) -> None:
            # The guest agent's log endpoint: no API key (the CLI sends none).
            parts = path[len(LOGS_PATH_PREFIX) :].split("/")
            app_id = parts[0] if parts else ""
            known = any(cvm.app_id == app_id for cvm in backend.visible())
            if len(parts) != 3 or parts[1] != "logs" or not known:
                self._reply(HTTPStatus.NOT_FOUND, {"detail": "Not Found"}, {})
                return
            emulator._record(
                RequestRecord("GET", path, query, None, None, HTTPStatus.OK, time.time())
            )
            serve_logs(
                self, emulator.container_logs, app_id, unquote(parts[2]), query, emulator._stopping
            )

        def _read_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length > 0 else b""

        def _reply(self, status: int, payload: Any, headers: Mapping[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if payload is None:
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = json.dumps(payload).encode("utf-8")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return PhalaApiHandler

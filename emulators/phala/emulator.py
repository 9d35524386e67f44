"""A local emulator of the Phala Cloud HTTP API, for running the real `phala` CLI in tests.

The real CLI (npm `phala@1.1.18`) validates every response with zod, so the response shapes
here follow the schemas bundled in `node_modules/phala/dist/index.js` for both API versions
the CLI speaks: `2025-10-28` (legacy; used by `phala deploy`) and `2026-01-21` (the default
for every other command, and for the `--wait` polling of `deploy`).

Point the CLI at it with `PHALA_CLOUD_API_PREFIX` (see `PhalaCloudEmulator.cli_env`).

Only 127.0.0.1 is ever bound. Standard library plus `cryptography`, nothing else.

Lifecycle is simulated lazily: a CVM remembers which status it will reach and when, and the
transition is applied whenever state is read. No timer threads, so nothing races the tests.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from emulators.phala.logs import LOGS_PATH_PREFIX, ContainerLogs, composition_view, serve_logs

LOOPBACK_HOST = "127.0.0.1"
API_PATH_PREFIX = "/api/v1"
API_VERSION_LEGACY = "2025-10-28"
API_VERSION_CURRENT = "2026-01-21"
SUPPORTED_API_VERSIONS = (API_VERSION_LEGACY, API_VERSION_CURRENT)
DEFAULT_API_KEY = "phak_emulator_test_key"
DEFAULT_GATEWAY_BASE_DOMAIN = "dstack-emu.phala.network"
DEFAULT_IMAGE = "dstack-0.5.4"
DEFAULT_DEV_IMAGE = "dstack-dev-0.5.4"
DEFAULT_DISK_SIZE_GB = 40
DEFAULT_REGION = "US-WEST-1"
NODE_ID = 1
NODE_NAME = "emu-prod1"
KMS_ID = "kms_emu_phala"
KMS_SLUG = "phala-emu"

STATUS_STARTING = "starting"
STATUS_RUNNING = "running"
STATUS_UPDATING = "updating"
STATUS_ERROR = "error"

# Resource sizes of the instance types the CLI offers (`phala instance-types`).
INSTANCE_TYPES: dict[str, tuple[int, int]] = {
    "tdx.small": (1, 2048),
    "tdx.medium": (2, 4096),
    "tdx.large": (4, 8192),
    "tdx.xlarge": (8, 16384),
    "tdx.2xlarge": (16, 32768),
    "tdx.4xlarge": (32, 65536),
    "tdx.8xlarge": (64, 131072),
}

# Same rule as the CLI's client-side check (and the SDK's provision schema).
CVM_NAME_PATTERN = re.compile(r"^[a-zA-Z](?!.*--)([a-zA-Z0-9-]*[a-zA-Z0-9])?$")
# The SDK only strips dashes from *version-4* UUIDs; mirror that when resolving ids.
UUID4_PATTERN = re.compile(
    r"^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$", re.IGNORECASE
)
HEX40_PATTERN = re.compile(r"^[0-9a-f]{40}$", re.IGNORECASE)
MAX_COMPOSE_AND_SCRIPT_BYTES = 200 * 1024

REPO_ROOT = Path(__file__).resolve().parents[2]
PHALA_BIN = REPO_ROOT / "node_modules" / ".bin" / "phala"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def canonical_compose_json(app_compose: Mapping[str, Any]) -> str:
    """Serialise an app-compose exactly like the SDK's `getComposeHash`.

    The SDK sorts keys recursively, pretty-prints with 4 spaces and then rewrites `": ` to
    `":` everywhere (including inside string values; we copy that quirk on purpose).
    """
    cleaned = dict(app_compose)
    if not cleaned.get("pre_launch_script"):
        cleaned.pop("pre_launch_script", None)
    text = json.dumps(_sort_keys_deep(cleaned), indent=4, ensure_ascii=False)
    return text.replace('": ', '":')


def compose_hash_of(app_compose: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_compose_json(app_compose).encode("utf-8")).hexdigest()


def _sort_keys_deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sort_keys_deep(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sort_keys_deep(item) for item in value]
    return value


def published_ports(docker_compose: str) -> list[int]:
    """Best-effort list of host ports published in a compose file (no YAML parser here).

    Used only to fill `endpoints`/`public_urls` with `https://<app_id>-<port>.<domain>`;
    the gateway routes `<app_id>-<port>` to the port the CVM publishes, i.e. the host side.
    Understands short syntax (`"8080:80"`, `127.0.0.1:8080:80`, `80/tcp`) and `published:`.
    """
    ports: list[int] = []
    in_ports_block = False
    block_indent = 0
    for line in docker_compose.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("ports:"):
            in_ports_block, block_indent = True, indent
            continue
        if not in_ports_block or not stripped:
            continue
        if indent <= block_indent and not stripped.startswith("-"):
            in_ports_block = False
            continue
        published = re.match(r"""^-?\s*published:\s*["']?(\d+)""", stripped)
        short = re.match(r"""^-\s*["']?([\d.:]+?)(?:/\w+)?["']?\s*$""", stripped)
        port: int | None = None
        if published:
            port = int(published.group(1))
        elif short:
            parts = short.group(1).split(":")
            # ip:host:container -> host; host:container -> host; container -> container
            host_part = parts[1] if len(parts) == 3 else parts[0]
            port = int(host_part) if host_part.isdigit() else None
        if port is not None and port not in ports:
            ports.append(port)
    return ports


class EnvDecryptionError(ValueError):
    """The `encrypted_env` hex did not decrypt with the app's key."""


@dataclass
class AppEnvKeypair:
    """Per-app X25519 key the CLI encrypts env vars to (kept as raw bytes so it deep-copies)."""

    private_bytes: bytes

    @classmethod
    def generate(cls) -> AppEnvKeypair:
        return cls(X25519PrivateKey.generate().private_bytes_raw())

    @property
    def public_hex(self) -> str:
        public = X25519PrivateKey.from_private_bytes(self.private_bytes).public_key()
        return public.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def decrypt_env(self, encrypted_env_hex: str) -> list[tuple[str, str]]:
        """Undo `@phala/dstack-sdk` `encryptEnvVars`: hex(eph_pub32 ‖ iv12 ‖ ct+tag16).

        The raw X25519 shared secret is the AES-256-GCM key (no KDF). Returns the ordered
        (key, value) pairs exactly as sent, duplicates included.
        """
        try:
            blob = bytes.fromhex(encrypted_env_hex.removeprefix("0x"))
        except ValueError as error:
            raise EnvDecryptionError("encrypted_env is not valid hex") from error
        if len(blob) < 32 + 12 + 16:
            raise EnvDecryptionError("encrypted_env is too short")
        ephemeral_public, iv, ciphertext = blob[:32], blob[32:44], blob[44:]
        private = X25519PrivateKey.from_private_bytes(self.private_bytes)
        try:
            shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
        except ValueError as error:  # e.g. a low-order (all-zero) ephemeral key
            raise EnvDecryptionError(f"encrypted_env has an unusable key: {error}") from error
        try:
            plaintext = AESGCM(shared).decrypt(iv, ciphertext, None)
        except InvalidTag as error:
            raise EnvDecryptionError("encrypted_env failed authentication") from error
        document = json.loads(plaintext.decode("utf-8"))
        return [(str(item["key"]), str(item["value"])) for item in document["env"]]


@dataclass
class CvmRevision:
    """One compose/env state of a CVM. `env` is the full env in effect after this revision."""

    number: int
    source: str  # "create", "update" or "external"
    docker_compose_file: str
    pre_launch_script: str | None
    compose_hash: str
    allowed_envs: list[str]
    env: dict[str, str]
    env_changed: bool
    env_pairs_sent: list[tuple[str, str]] | None
    encrypted_env: str | None
    public_logs: bool
    public_sysinfo: bool
    at: str


@dataclass
class EmulatedCvm:
    numeric_id: int
    vm_uuid: str
    app_id: str
    instance_id: str
    name: str
    instance_type: str | None
    vcpu: int
    memory_mb: int
    disk_size_gb: int
    image: str
    prefer_dev: bool
    kms: str
    region: str
    listed: bool
    storage_fs: str | None
    docker_compose_file: str
    pre_launch_script: str | None
    allowed_envs: list[str]
    public_logs: bool
    public_sysinfo: bool
    env: dict[str, str]
    encrypted_env: str | None
    compose_hash: str
    app_compose: dict[str, Any]
    gateway_base_domain: str
    keypair: AppEnvKeypair
    created_at: str
    updated_at: str
    status: str
    in_progress: bool = False
    operation_type: str | None = None
    operation_started_at: str | None = None
    correlation_id: str | None = None
    boot_error: str | None = None
    running_since: float | None = None
    # Where the simulated lifecycle is heading, and when (time.monotonic()); None = stay.
    pending_status: str | None = None
    pending_at: float | None = None
    revisions: list[CvmRevision] = field(default_factory=list)

    @property
    def env_pubkey_hex(self) -> str:
        return self.keypair.public_hex


@dataclass
class RequestRecord:
    """One request the emulator saw. Headers are not kept, so the API key never is."""

    method: str
    path: str  # relative to the API prefix, e.g. "/cvms/provision"
    query: dict[str, list[str]]
    api_version: str | None
    body: Any
    status: int
    at: float


@dataclass
class _ErrorFault:
    method: str | None
    path_pattern: re.Pattern[str]
    status: int
    detail: Any
    remaining: int | None


@dataclass
class _DelayFault:
    method: str | None
    path_pattern: re.Pattern[str]
    seconds: float
    remaining: int | None


@dataclass
class _PendingProvision:
    """What `POST /cvms/provision` promised; `POST /cvms` turns it into a CVM."""

    app_id: str
    request: dict[str, Any]
    app_compose: dict[str, Any]
    compose_hash: str
    keypair: AppEnvKeypair


@dataclass
class _CvmFate:
    """A test-chosen outcome for a CVM, by name, applied when it is created or updated."""

    stuck: bool = False
    failure_status: str | None = None
    boot_error: str | None = None


class ApiError(Exception):
    """Answered to the client as `status` with `{"detail": detail}`."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail


class CvmNotFoundError(ApiError, LookupError):
    """404 for the CLI; a plain LookupError for tests calling the inspection helpers."""

    def __init__(self, identifier: str) -> None:
        super().__init__(HTTPStatus.NOT_FOUND, f"CVM not found: {identifier}")


class PhalaCloudEmulator:
    """In-memory Phala Cloud API on 127.0.0.1. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        port: int = 0,
        provision_seconds: float = 0.3,
        update_seconds: float = 0.3,
        gateway_base_domain: str = DEFAULT_GATEWAY_BASE_DOMAIN,
        updating_status: str = STATUS_UPDATING,
        allow_duplicate_names: bool = False,
        cloud_username: str = "emulator-user",
        workspace_name: str = "emulator-workspace",
    ) -> None:
        self.api_key = api_key
        self.provision_seconds = provision_seconds
        self.update_seconds = update_seconds
        self.gateway_base_domain = gateway_base_domain
        # What status a CVM shows while a PATCH update is applied. The CLI's --wait loop
        # (v2026 schema) only looks at `status == "running"`, because zod strips
        # `in_progress`; an API that kept "running" during updates would end --wait at once.
        self.updating_status = updating_status
        self.allow_duplicate_names = allow_duplicate_names
        self.cloud_username = cloud_username
        self.workspace_name = workspace_name
        self._requested_port = port
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._cvms: dict[int, EmulatedCvm] = {}
        self._pending_provisions: dict[str, _PendingProvision] = {}
        self._fates_by_name: dict[str, _CvmFate] = {}
        self._error_faults: list[_ErrorFault] = []
        self._delay_faults: list[_DelayFault] = []
        self._log: list[RequestRecord] = []
        self.container_logs = ContainerLogs()  # emulators/phala/logs.py
        self._next_numeric_id = 1001
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -------------------------------------------------------------------

    def start(self) -> PhalaCloudEmulator:
        if self._server is not None:
            return self
        handler = _make_handler(self)
        server = ThreadingHTTPServer((LOOPBACK_HOST, self._requested_port), handler)
        server.daemon_threads = True
        # Python's server_close() otherwise joins every handler thread, and one parked on an
        # idle keep-alive connection would make stop() hang.
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

    def cli_env(self, home: Path | str) -> dict[str, str]:
        """A minimal, clean environment for running the real CLI against this emulator.

        Built from scratch (not os.environ) so a developer's own PHALA_* variables,
        credentials or proxy settings can never leak into a test.
        """
        home_path = Path(home)
        home_path.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(home_path),
            "PHALA_CLOUD_API_PREFIX": self.api_prefix,
            "PHALA_CLOUD_API_KEY": self.api_key,
            "PHALA_DISABLE_UPDATE_CHECK": "1",
            "NO_COLOR": "1",
            "LANG": "C.UTF-8",
        }

    def append_container_log(
        self, identifier: str, container: str, message: str, *, channel: str = "stdout"
    ) -> None:
        """Add a line to a container's log (include the newline, as docker does)."""
        with self._lock:
            app_id = self._require_cvm(identifier).app_id
        self.container_logs.append(app_id, container, message, channel)

    # ----- fault injection -------------------------------------------------------------

    def inject_error(
        self,
        method: str | None,
        path_regex: str,
        *,
        status: int = 500,
        detail: Any = "Internal Server Error (injected)",
        times: int | None = 1,
    ) -> None:
        """Answer matching calls with `status` and `{"detail": detail}`.

        `path_regex` is searched in the path relative to the API prefix (e.g. r"^/cvms$").
        `times=None` means forever. Note that the CLI's HTTP client (ofetch) retries GETs
        once on 408/409/425/429/500/502/503/504, so a GET needs `times=2` to surface.
        """
        fault = _ErrorFault(_norm_method(method), re.compile(path_regex), status, detail, times)
        with self._lock:
            self._error_faults.append(fault)

    def inject_delay(
        self, method: str | None, path_regex: str, seconds: float, *, times: int | None = 1
    ) -> None:
        """Sleep `seconds` before answering matching calls (the CLI times out at 30 s)."""
        fault = _DelayFault(_norm_method(method), re.compile(path_regex), seconds, times)
        with self._lock:
            self._delay_faults.append(fault)

    def make_stuck(self, identifier: str) -> None:
        """Keep a CVM in its current (or, if not yet created, its initial) status forever.

        `identifier` may name a CVM that does not exist yet: the fate then applies when a
        CVM with that name is created.
        """
        with self._lock:
            cvm = self._find_cvm(identifier)
            if cvm is None:
                self._fates_by_name[identifier] = _CvmFate(stuck=True)
                return
            self._advance(cvm)
            cvm.pending_status = None
            cvm.pending_at = None
            if cvm.status == STATUS_RUNNING:
                # A running CVM can only be "stuck" on its way somewhere: park it in starting.
                cvm.status, cvm.in_progress, cvm.running_since = STATUS_STARTING, True, None
            self._fates_by_name[cvm.name] = _CvmFate(stuck=True)

    def make_failing(
        self,
        identifier: str,
        *,
        status: str = STATUS_ERROR,
        boot_error: str = "boot failed (injected)",
    ) -> None:
        """Send a CVM to a failure status instead of running.

        An existing CVM fails at its next transition (at once if it is already settled);
        a name not yet known fails when it is created.
        """
        fate = _CvmFate(failure_status=status, boot_error=boot_error)
        with self._lock:
            cvm = self._find_cvm(identifier)
            if cvm is None:
                self._fates_by_name[identifier] = fate
                return
            self._fates_by_name[cvm.name] = fate
            self._advance(cvm)
            if cvm.pending_status is None:
                self._settle(cvm, status, boot_error)
            else:
                cvm.pending_status = status

    def delete_behind_back(self, identifier: str) -> None:
        """Remove a CVM from state as if someone deleted it in the dashboard."""
        with self._lock:
            cvm = self._require_cvm(identifier)
            del self._cvms[cvm.numeric_id]

    def change_compose_externally(
        self,
        identifier: str,
        docker_compose_file: str,
        *,
        env: Mapping[str, str] | None = None,
        pre_launch_script: str | None = None,
    ) -> str:
        """Change a CVM's compose (and optionally env) outside the CLI; returns the new hash."""
        with self._lock:
            cvm = self._require_cvm(identifier)
            self._advance(cvm)
            cvm.docker_compose_file = docker_compose_file
            if pre_launch_script is not None:
                cvm.pre_launch_script = pre_launch_script
            if env is not None:
                cvm.env = dict(env)
                cvm.allowed_envs = list(env)
                cvm.encrypted_env = None
            self._recompute_compose(cvm)
            self._record_revision(cvm, "external", env_changed=env is not None, pairs=None)
            cvm.updated_at = utc_now_iso()
            return cvm.compose_hash

    def set_status(self, identifier: str, status: str, *, in_progress: bool = False) -> None:
        """Force a CVM's status (e.g. "stopped") and cancel any pending transition."""
        with self._lock:
            cvm = self._require_cvm(identifier)
            cvm.pending_status = None
            cvm.pending_at = None
            cvm.status = status
            cvm.in_progress = in_progress
            cvm.running_since = time.monotonic() if status == STATUS_RUNNING else None

    def finish_pending(self, identifier: str) -> None:
        """End a CVM's boot or update now, with the outcome it was going to have."""
        with self._lock:
            cvm = self._require_cvm(identifier)
            if cvm.pending_at is not None:
                cvm.pending_at = time.monotonic()
            self._advance(cvm)

    def reset_faults(self) -> None:
        """Drop injected errors, delays and pending fates (existing CVM states stay)."""
        with self._lock:
            self._error_faults.clear()
            self._delay_faults.clear()
            self._fates_by_name.clear()

    # ----- request log -----------------------------------------------------------------

    @property
    def request_log(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def requests(
        self, method: str | None = None, path_regex: str | None = None
    ) -> list[RequestRecord]:
        wanted_method = _norm_method(method)
        pattern = re.compile(path_regex) if path_regex is not None else None
        with self._lock:
            return [
                record
                for record in self._log
                if (wanted_method is None or record.method == wanted_method)
                and (pattern is None or pattern.search(record.path))
            ]

    def count(self, method: str | None = None, path_regex: str | None = None) -> int:
        return len(self.requests(method, path_regex))

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # ----- inspection ------------------------------------------------------------------

    def cvms(self) -> list[EmulatedCvm]:
        """Snapshots (deep copies) of all CVMs, oldest first, with lifecycle applied."""
        with self._lock:
            for cvm in self._cvms.values():
                self._advance(cvm)
            return [copy.deepcopy(cvm) for cvm in self._cvms.values()]

    def cvm_by_name(self, name: str) -> EmulatedCvm | None:
        with self._lock:
            for cvm in self._cvms.values():
                if cvm.name == name:
                    self._advance(cvm)
                    return copy.deepcopy(cvm)
        return None

    def cvm(self, identifier: str) -> EmulatedCvm | None:
        """Look a CVM up by any id form the API accepts (see `_find_cvm`)."""
        with self._lock:
            found = self._find_cvm(identifier)
            if found is None:
                return None
            self._advance(found)
            return copy.deepcopy(found)

    def decrypted_env(self, cvm: EmulatedCvm | str) -> dict[str, str]:
        """The env currently in effect (decrypted), as an ordered str→str dict."""
        identifier = cvm if isinstance(cvm, str) else str(cvm.numeric_id)
        with self._lock:
            return dict(self._require_cvm(identifier).env)

    # ----- state helpers (call with the lock held) -------------------------------------

    def _find_cvm(self, identifier: str) -> EmulatedCvm | None:
        """Resolve every id form the CLI sends to /cvms/{id}.

        Numeric id, UUID with or without dashes, `app_<40hex>`, bare 40-hex, `instance_<hex>`,
        bare instance id, or the name. `app_<hex>` also matches an instance id, because the
        SDK turns any bare 40-hex (which an instance id is) into `app_<hex>`.
        """
        ident = identifier.strip()
        lowered = ident.lower()
        candidates = list(self._cvms.values())
        if ident.isdigit():
            found = self._cvms.get(int(ident))
            if found is not None:
                return found
        if UUID4_PATTERN.match(ident):
            dashless = lowered.replace("-", "")
            for cvm in candidates:
                if cvm.vm_uuid.replace("-", "") == dashless:
                    return cvm
        hex_part = lowered.removeprefix("app_").removeprefix("instance_").removeprefix("0x")
        if HEX40_PATTERN.match(hex_part):
            if not lowered.startswith("instance_"):
                for cvm in candidates:
                    if cvm.app_id == hex_part:
                        return cvm
            for cvm in candidates:
                if cvm.instance_id == hex_part:
                    return cvm
        for cvm in reversed(candidates):  # newest wins if duplicate names are allowed
            if cvm.name == ident:
                return cvm
        return None

    def _require_cvm(self, identifier: str) -> EmulatedCvm:
        cvm = self._find_cvm(identifier)
        if cvm is None:
            raise CvmNotFoundError(identifier)
        return cvm

    def _advance(self, cvm: EmulatedCvm) -> None:
        if cvm.pending_at is None or cvm.pending_status is None:
            return
        if time.monotonic() < cvm.pending_at:
            return
        fate = self._fates_by_name.get(cvm.name)
        boot_error = fate.boot_error if fate and fate.failure_status else None
        self._settle(cvm, cvm.pending_status, boot_error)

    def _settle(self, cvm: EmulatedCvm, status: str, boot_error: str | None) -> None:
        cvm.status = status
        cvm.in_progress = False
        cvm.pending_status = None
        cvm.pending_at = None
        cvm.operation_type = None
        cvm.operation_started_at = None
        cvm.boot_error = boot_error if status != STATUS_RUNNING else None
        cvm.running_since = time.monotonic() if status == STATUS_RUNNING else None
        cvm.updated_at = utc_now_iso()

    def _begin_operation(
        self, cvm: EmulatedCvm, status: str, operation: str, seconds: float
    ) -> None:
        fate = self._fates_by_name.get(cvm.name)
        cvm.status = status
        cvm.in_progress = True
        cvm.operation_type = operation
        cvm.operation_started_at = utc_now_iso()
        cvm.correlation_id = str(uuid.uuid4())
        cvm.running_since = None
        cvm.boot_error = None
        if fate is not None and fate.stuck:
            cvm.pending_status, cvm.pending_at = None, None
        else:
            target = fate.failure_status if fate and fate.failure_status else STATUS_RUNNING
            cvm.pending_status, cvm.pending_at = target, time.monotonic() + seconds

    def _recompute_compose(self, cvm: EmulatedCvm) -> None:
        cvm.app_compose = build_app_compose(
            name=cvm.name,
            docker_compose_file=cvm.docker_compose_file,
            allowed_envs=cvm.allowed_envs,
            public_logs=cvm.public_logs,
            public_sysinfo=cvm.public_sysinfo,
            pre_launch_script=cvm.pre_launch_script,
            storage_fs=cvm.storage_fs,
        )
        cvm.compose_hash = compose_hash_of(cvm.app_compose)

    def _record_revision(
        self,
        cvm: EmulatedCvm,
        source: str,
        *,
        env_changed: bool,
        pairs: list[tuple[str, str]] | None,
    ) -> None:
        cvm.revisions.append(
            CvmRevision(
                number=len(cvm.revisions) + 1,
                source=source,
                docker_compose_file=cvm.docker_compose_file,
                pre_launch_script=cvm.pre_launch_script,
                compose_hash=cvm.compose_hash,
                allowed_envs=list(cvm.allowed_envs),
                env=dict(cvm.env),
                env_changed=env_changed,
                env_pairs_sent=list(pairs) if pairs is not None else None,
                encrypted_env=cvm.encrypted_env,
                public_logs=cvm.public_logs,
                public_sysinfo=cvm.public_sysinfo,
                at=utc_now_iso(),
            )
        )

    def _take_delay(self, method: str, path: str) -> float:
        with self._lock:
            for fault in self._delay_faults:
                if _fault_matches(fault, method, path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._delay_faults.remove(fault)
                    return fault.seconds
        return 0.0

    def _take_error(self, method: str, path: str) -> _ErrorFault | None:
        with self._lock:
            for fault in self._error_faults:
                if _fault_matches(fault, method, path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._error_faults.remove(fault)
                    return fault
        return None

    def _append_log(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)

    # ----- request handling ------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        api_version: str,
        api_key: str | None,
        body: Any,
    ) -> tuple[int, Any]:
        """Route one request; returns (status, JSON-able body or None for no body)."""
        delay = self._take_delay(method, path)
        if delay > 0:
            self._stopping.wait(delay)
        if not api_key:
            raise ApiError(HTTPStatus.UNAUTHORIZED, "Not authenticated: missing X-API-Key header")
        if not hmac.compare_digest(api_key.encode(), self.api_key.encode()):
            raise ApiError(HTTPStatus.UNAUTHORIZED, "Invalid API key")
        fault = self._take_error(method, path)
        if fault is not None:
            raise ApiError(fault.status, fault.detail)

        segments = [unquote(part) for part in path.strip("/").split("/") if part]
        with self._lock:
            match method, segments:
                case "GET", ["auth", "me"]:
                    return HTTPStatus.OK, self._auth_me(api_version)
                case "POST", ["cvms", "provision"]:
                    return HTTPStatus.OK, self._provision(_require_object(body))
                case "POST", ["cvms"]:
                    return HTTPStatus.OK, self._commit(_require_object(body))
                case "GET", ["cvms", identifier]:
                    cvm = self._require_cvm(identifier)
                    self._advance(cvm)
                    return HTTPStatus.OK, self._cvm_view(cvm, api_version)
                case "GET", ["cvms", identifier, "composition"]:
                    cvm = self._require_cvm(identifier)
                    self._advance(cvm)
                    return HTTPStatus.OK, composition_view(
                        app_id=cvm.app_id,
                        docker_compose_file=cvm.docker_compose_file,
                        running=cvm.status == STATUS_RUNNING,
                        public_logs=cvm.public_logs,
                        log_base_url=f"http://{LOOPBACK_HOST}:{self.port}",
                        created=int(datetime.fromisoformat(cvm.created_at).timestamp()),
                    )
                case "GET", ["cvms", identifier, "compose_file"]:
                    cvm = self._require_cvm(identifier)
                    return HTTPStatus.OK, dict(cvm.app_compose)
                case "PATCH", ["cvms", identifier]:
                    return HTTPStatus.ACCEPTED, self._update(identifier, _require_object(body))
                case "DELETE", ["cvms", identifier]:
                    cvm = self._require_cvm(identifier)
                    del self._cvms[cvm.numeric_id]
                    return HTTPStatus.NO_CONTENT, None
                case "GET", ["apps"]:
                    return HTTPStatus.OK, self._list_apps(query, api_version)
                case "POST", ["status", "batch"]:
                    return HTTPStatus.OK, self._status_batch(_require_object(body))
        raise ApiError(HTTPStatus.NOT_FOUND, "Not Found")

    def _auth_me(self, api_version: str) -> dict[str, Any]:
        email = f"{self.cloud_username}@example.invalid"
        if api_version == API_VERSION_LEGACY:
            return {
                "username": self.cloud_username,
                "email": email,
                "credits": 100,
                "granted_credits": 0,
                "avatar": "",
                "team_name": self.workspace_name,
                "team_tier": "pro",
            }
        return {
            "user": {
                "username": self.cloud_username,
                "email": email,
                "role": "user",
                "avatar": "",
                "email_verified": True,
                "totp_enabled": False,
                "has_backup_codes": False,
                "flag_has_password": True,
            },
            "workspace": {
                "id": "ws_emulator",
                "name": self.workspace_name,
                "slug": self.workspace_name,
                "tier": "pro",
                "role": "owner",
                "avatar": None,
            },
            "credits": {
                "balance": "100.00",
                "granted_balance": "0.00",
                "is_post_paid": False,
                "outstanding_amount": None,
            },
        }

    def _provision(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        if (
            not isinstance(name, str)
            or not (5 <= len(name) <= 63)
            or not CVM_NAME_PATTERN.match(name)
        ):
            raise _validation_error(
                ["body", "name"],
                "Name must be 5-63 characters, start with letter, and contain only "
                "letters/numbers/hyphens",
            )
        if not self.allow_duplicate_names and any(c.name == name for c in self._cvms.values()):
            raise ApiError(HTTPStatus.CONFLICT, f"CVM with name '{name}' already exists")
        kms = str(body.get("kms") or "PHALA").upper()
        if kms != "PHALA":
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"KMS {kms} is not supported by the emulator (only PHALA)",
            )
        compose_file = body.get("compose_file")
        if not isinstance(compose_file, dict):
            raise _validation_error(["body", "compose_file"], "Field required")
        docker_compose = compose_file.get("docker_compose_file")
        if not isinstance(docker_compose, str) or not docker_compose.strip():
            raise _validation_error(
                ["body", "compose_file", "docker_compose_file"], "Field required"
            )
        script = compose_file.get("pre_launch_script")
        size = len(docker_compose.encode()) + len((script or "").encode())
        if size > MAX_COMPOSE_AND_SCRIPT_BYTES:
            raise ApiError(HTTPStatus.BAD_REQUEST, "docker_compose_file is too large")
        instance_type = body.get("instance_type")
        if instance_type is not None and instance_type not in INSTANCE_TYPES:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"Instance type '{instance_type}' not found")

        app_id = secrets.token_hex(20)
        allowed_envs = [str(key) for key in compose_file.get("allowed_envs") or []]
        app_compose = build_app_compose(
            name=name,
            docker_compose_file=docker_compose,
            allowed_envs=allowed_envs,
            public_logs=bool(compose_file.get("public_logs", True)),
            public_sysinfo=bool(compose_file.get("public_sysinfo", True)),
            pre_launch_script=script,
            storage_fs=compose_file.get("storage_fs"),
        )
        pending = _PendingProvision(
            app_id=app_id,
            request=copy.deepcopy(body),
            app_compose=app_compose,
            compose_hash=compose_hash_of(app_compose),
            keypair=AppEnvKeypair.generate(),
        )
        self._pending_provisions[app_id] = pending
        return {
            "app_id": app_id,
            "app_env_encrypt_pubkey": pending.keypair.public_hex,
            "compose_hash": pending.compose_hash,
            "kms_info": _legacy_kms_info(self.gateway_base_domain),
            "fmspc": "00806f050000",
            "device_id": hashlib.sha256(b"emulated-node").hexdigest(),
            "os_image_hash": hashlib.sha256(self._image_for(body).encode()).hexdigest(),
            "instance_type": instance_type,
            "teepod_id": NODE_ID,
            "kms_id": KMS_ID,
        }

    def _image_for(self, request: Mapping[str, Any]) -> str:
        if isinstance(request.get("image"), str) and request["image"]:
            return str(request["image"])
        return DEFAULT_DEV_IMAGE if request.get("prefer_dev") else DEFAULT_IMAGE

    def _commit(self, body: dict[str, Any]) -> dict[str, Any]:
        app_id = str(body.get("app_id") or "").removeprefix("app_")
        pending = self._pending_provisions.get(app_id)
        if pending is None:
            raise ApiError(HTTPStatus.NOT_FOUND, f"No pending provision for app_id {app_id}")
        if body.get("compose_hash") != pending.compose_hash:
            raise ApiError(HTTPStatus.BAD_REQUEST, "compose_hash does not match the provision")
        encrypted_env = body.get("encrypted_env")
        pairs = self._decrypt_or_reject(pending.keypair, encrypted_env)
        request = pending.request
        compose_file = request["compose_file"]
        instance_type = request.get("instance_type")
        default_vcpu, default_memory = INSTANCE_TYPES.get(
            instance_type or "", INSTANCE_TYPES["tdx.small"]
        )
        now = utc_now_iso()
        cvm = EmulatedCvm(
            numeric_id=self._next_numeric_id,
            vm_uuid=str(uuid.uuid4()),
            app_id=app_id,
            instance_id=secrets.token_hex(20),
            name=str(request["name"]),
            instance_type=instance_type,
            vcpu=int(request.get("vcpu") or default_vcpu),
            memory_mb=int(request.get("memory") or default_memory),
            disk_size_gb=int(request.get("disk_size") or DEFAULT_DISK_SIZE_GB),
            image=self._image_for(request),
            prefer_dev=bool(request.get("prefer_dev", False)),
            kms=str(request.get("kms") or "PHALA"),
            region=str(request.get("region") or DEFAULT_REGION),
            listed=bool(request.get("listed", False)),
            storage_fs=compose_file.get("storage_fs"),
            docker_compose_file=str(compose_file["docker_compose_file"]),
            pre_launch_script=compose_file.get("pre_launch_script"),
            allowed_envs=list(pending.app_compose["allowed_envs"]),
            public_logs=bool(compose_file.get("public_logs", True)),
            public_sysinfo=bool(compose_file.get("public_sysinfo", True)),
            env=dict(pairs or []),
            encrypted_env=encrypted_env if isinstance(encrypted_env, str) else None,
            compose_hash=pending.compose_hash,
            app_compose=pending.app_compose,
            gateway_base_domain=self.gateway_base_domain,
            keypair=pending.keypair,
            created_at=now,
            updated_at=now,
            status=STATUS_STARTING,
        )
        self._next_numeric_id += 1
        del self._pending_provisions[app_id]
        self._cvms[cvm.numeric_id] = cvm
        self._begin_operation(cvm, STATUS_STARTING, "create", self.provision_seconds)
        self._record_revision(cvm, "create", env_changed=pairs is not None, pairs=pairs)
        return self._commit_view(cvm)

    def _decrypt_or_reject(
        self, keypair: AppEnvKeypair, encrypted_env: Any
    ) -> list[tuple[str, str]] | None:
        # The real API cannot read the env (only the TEE can); the emulator refuses what it
        # cannot decrypt so a broken client fails loudly instead of booting with no env.
        if encrypted_env is None or encrypted_env == "":
            return None
        if not isinstance(encrypted_env, str):
            raise _validation_error(["body", "encrypted_env"], "Input should be a valid string")
        try:
            return keypair.decrypt_env(encrypted_env)
        except (EnvDecryptionError, ValueError, KeyError, TypeError) as error:
            raise ApiError(
                HTTPStatus.BAD_REQUEST, f"encrypted_env could not be decrypted: {error}"
            ) from error

    def _update(self, identifier: str, body: dict[str, Any]) -> dict[str, Any]:
        cvm = self._require_cvm(identifier)
        self._advance(cvm)
        compose = body.get("docker_compose_file")
        if compose is not None:
            if not isinstance(compose, str) or not compose.strip():
                raise _validation_error(["body", "docker_compose_file"], "Invalid compose")
            cvm.docker_compose_file = compose
        if "pre_launch_script" in body:
            cvm.pre_launch_script = body.get("pre_launch_script")
        for flag in ("public_logs", "public_sysinfo"):
            if isinstance(body.get(flag), bool):
                setattr(cvm, flag, body[flag])
        previous_allowed = list(cvm.allowed_envs)
        if isinstance(body.get("allowed_envs"), list):
            cvm.allowed_envs = [str(key) for key in body["allowed_envs"]]
        pairs = self._decrypt_or_reject(cvm.keypair, body.get("encrypted_env"))
        if pairs is not None:
            cvm.env = dict(pairs)
            cvm.encrypted_env = body["encrypted_env"]
        self._recompute_compose(cvm)
        self._begin_operation(cvm, self.updating_status, "update", self.update_seconds)
        self._record_revision(cvm, "update", env_changed=pairs is not None, pairs=pairs)
        cvm.updated_at = utc_now_iso()
        return {
            "correlation_id": cvm.correlation_id,
            "status": "in_progress",
            "message": "CVM update accepted",
            "compose_hash": cvm.compose_hash,
            "allowed_envs_changed": previous_allowed != cvm.allowed_envs,
        }

    def _list_apps(self, query: dict[str, list[str]], api_version: str) -> dict[str, Any]:
        page = max(1, int((query.get("page") or ["1"])[0]))
        page_size = max(1, int((query.get("page_size") or ["50"])[0]))
        search = (query.get("search") or [""])[0].lower()
        wanted_statuses = set(query.get("status") or [])
        selected: list[EmulatedCvm] = []
        for cvm in sorted(self._cvms.values(), key=lambda c: c.numeric_id, reverse=True):
            self._advance(cvm)
            haystack = " ".join((cvm.name, cvm.app_id, cvm.vm_uuid, cvm.instance_id)).lower()
            if search and search not in haystack:
                continue
            if wanted_statuses and cvm.status not in wanted_statuses:
                continue
            selected.append(cvm)
        total = len(selected)
        window = selected[(page - 1) * page_size : page * page_size]
        return {
            "dstack_apps": [self._app_view(cvm, api_version) for cvm in window],
            "page": page,
            "page_size": page_size,
            "total": total,
            "total_pages": max(1, -(-total // page_size)),
        }

    def _status_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        uuids = body.get("vm_uuids")
        if not isinstance(uuids, list):
            raise _validation_error(["body", "vm_uuids"], "Field required")
        result: dict[str, Any] = {}
        for requested in uuids:
            cvm = self._find_cvm(str(requested))
            if cvm is None:
                continue
            self._advance(cvm)
            result[str(requested)] = {
                "vm_uuid": cvm.vm_uuid,
                "status": cvm.status,
                "uptime": _uptime_text(cvm),
                "in_progress": cvm.in_progress,
                "boot_progress": "booting" if cvm.status == STATUS_STARTING else None,
                "boot_error": cvm.boot_error,
                "operation_type": cvm.operation_type,
                "operation_started_at": cvm.operation_started_at,
                "correlation_id": cvm.correlation_id if cvm.in_progress else None,
            }
        return result

    # ----- response shapes -------------------------------------------------------------

    def _endpoints(self, cvm: EmulatedCvm) -> list[dict[str, str]]:
        domain = cvm.gateway_base_domain
        return [
            {
                "app": f"https://{cvm.app_id}-{port}.{domain}",
                "instance": f"https://{cvm.instance_id}-{port}.{domain}",
            }
            for port in published_ports(cvm.docker_compose_file)
        ]

    def _commit_view(self, cvm: EmulatedCvm) -> dict[str, Any]:
        """`POST /cvms` response (SDK `CommitCvmProvision` schema)."""
        return {
            "id": cvm.numeric_id,
            "name": cvm.name,
            "status": cvm.status,
            "teepod_id": NODE_ID,
            "teepod": {"id": NODE_ID, "name": NODE_NAME},
            "user_id": 1,
            "app_id": cvm.app_id,
            "vm_uuid": cvm.vm_uuid,
            "instance_id": cvm.instance_id,
            "app_url": None,
            "base_image": cvm.image,
            "vcpu": cvm.vcpu,
            "memory": cvm.memory_mb,
            "disk_size": cvm.disk_size_gb,
            "manifest_version": 2,
            "version": "1.0.0",
            "runner": "docker-compose",
            "docker_compose_file": cvm.docker_compose_file,
            "features": ["kms", "tproxy-net"],
            "created_at": cvm.created_at,
            "encrypted_env_pubkey": cvm.env_pubkey_hex,
        }

    def _cvm_view(self, cvm: EmulatedCvm, api_version: str) -> dict[str, Any]:
        if api_version == API_VERSION_LEGACY:
            return self._legacy_cvm_view(cvm)
        return self._current_cvm_view(cvm)

    def _legacy_cvm_view(self, cvm: EmulatedCvm) -> dict[str, Any]:
        """`GET /cvms/{id}` for X-Phala-Version 2025-10-28 (SDK legacy CvmDetail)."""
        return {
            "id": cvm.numeric_id,
            "name": cvm.name,
            "status": cvm.status,
            "in_progress": cvm.in_progress,
            "teepod_id": NODE_ID,
            "teepod": {"id": NODE_ID, "name": NODE_NAME, "region_identifier": cvm.region},
            "app_id": cvm.app_id,
            "vm_uuid": cvm.vm_uuid,
            "instance_id": cvm.instance_id,
            "vcpu": cvm.vcpu,
            "memory": cvm.memory_mb,
            "disk_size": cvm.disk_size_gb,
            "base_image": cvm.image,
            "encrypted_env_pubkey": cvm.env_pubkey_hex,
            "listed": cvm.listed,
            "project_id": None,
            "project_type": None,
            "instance_type": cvm.instance_type,
            "public_sysinfo": cvm.public_sysinfo,
            "public_logs": cvm.public_logs,
            "dapp_dashboard_url": None,
            "syslog_endpoint": None,
            "kms_info": _legacy_kms_info(cvm.gateway_base_domain),
            "contract_address": None,
            "deployer_address": None,
            "scheduled_delete_at": None,
            "public_urls": self._endpoints(cvm),
            "gateway_domain": cvm.gateway_base_domain,
            "machine_info": {
                "vcpu": cvm.vcpu,
                "memory": cvm.memory_mb,
                "disk_size": cvm.disk_size_gb,
                "gpu_count": 0,
            },
            "updated_at": cvm.updated_at,
            "created_at": cvm.created_at,
            "compose_hash": cvm.compose_hash,
        }

    def _current_cvm_view(self, cvm: EmulatedCvm) -> dict[str, Any]:
        """`GET /cvms/{id}` for X-Phala-Version 2026-01-21 (SDK CvmInfoDetailV20260121)."""
        view = self._current_cvm_summary(cvm)
        view["compose_file"] = dict(cvm.app_compose)
        return view

    def _current_cvm_summary(self, cvm: EmulatedCvm) -> dict[str, Any]:
        progress = (
            {
                "target": STATUS_RUNNING,
                "started_at": cvm.operation_started_at,
                "correlation_id": cvm.correlation_id,
            }
            if cvm.in_progress
            else None
        )
        return {
            "id": str(cvm.numeric_id),
            "name": cvm.name,
            "app_id": cvm.app_id,
            "vm_uuid": cvm.vm_uuid,
            "instance_id": cvm.instance_id,
            "resource": {
                "instance_type": cvm.instance_type,
                "vcpu": cvm.vcpu,
                "memory_in_gb": cvm.memory_mb / 1024,
                "disk_in_gb": cvm.disk_size_gb,
                "gpus": 0,
                "compute_billing_price": None,
                "billing_period": None,
            },
            "node_info": {
                "object_type": "node",
                "id": NODE_ID,
                "name": NODE_NAME,
                "region": cvm.region,
                "device_id": hashlib.sha256(b"emulated-node").hexdigest(),
                "ppid": None,
                "status": "online",
                "version": "0.5.4",
            },
            "os": {
                "name": cvm.image,
                "version": "0.5.4",
                "is_dev": cvm.prefer_dev,
                "os_image_hash": hashlib.sha256(cvm.image.encode()).hexdigest(),
            },
            "kms_type": cvm.kms.lower(),
            "kms_info": {
                "chain_id": None,
                "dstack_kms_address": None,
                "dstack_app_address": None,
                "deployer_address": None,
                "rpc_endpoint": None,
                "encrypted_env_pubkey": cvm.env_pubkey_hex,
            },
            "status": cvm.status,
            "progress": progress,
            "compose_hash": cvm.compose_hash,
            "gateway": {"base_domain": cvm.gateway_base_domain, "cname": None},
            "services": [],
            "endpoints": self._endpoints(cvm),
            "public_logs": cvm.public_logs,
            "public_sysinfo": cvm.public_sysinfo,
            "public_tcbinfo": True,
            "gateway_enabled": True,
            "secure_time": False,
            "listed": cvm.listed,
            "storage_fs": cvm.storage_fs or "ext4",
            "workspace": {
                "object_type": "workspace",
                "id": "ws_emulator",
                "name": self.workspace_name,
                "slug": self.workspace_name,
                "avatar_url": None,
            },
            "creator": {
                "object_type": "user",
                "id": "user_emulator",
                "username": self.cloud_username,
                "avatar_url": None,
            },
            "created_at": cvm.created_at,
        }

    def _app_view(self, cvm: EmulatedCvm, api_version: str) -> dict[str, Any]:
        if api_version == API_VERSION_LEGACY:
            current: dict[str, Any] = {
                "vm_uuid": cvm.vm_uuid,
                "app_id": cvm.app_id,
                "name": cvm.name,
                "status": cvm.status,
                "vcpu": cvm.vcpu,
                "memory": cvm.memory_mb,
                "disk_size": cvm.disk_size_gb,
                "teepod_id": NODE_ID,
                "teepod_name": NODE_NAME,
                "region_identifier": cvm.region,
                "kms_type": cvm.kms.lower(),
                "instance_type": cvm.instance_type,
                "listed": cvm.listed,
                "base_image": cvm.image,
                "kms_slug": KMS_SLUG,
                "kms_id": KMS_ID,
                "instance_id": cvm.instance_id,
                "updated_at": cvm.updated_at,
            }
        else:
            current = self._current_cvm_summary(cvm)
        return {
            "id": f"app-{cvm.numeric_id}",
            "name": cvm.name,
            "app_id": cvm.app_id,
            "app_provision_type": "dstack",
            "app_icon_url": None,
            "created_at": cvm.created_at,
            "kms_type": cvm.kms.lower(),
            "profile": None,
            "current_cvm": current,
            "cvms": [current],
            "cvm_count": 1,
        }


def build_app_compose(
    *,
    name: str,
    docker_compose_file: str,
    allowed_envs: Sequence[str],
    public_logs: bool,
    public_sysinfo: bool,
    pre_launch_script: str | None,
    storage_fs: str | None,
) -> dict[str, Any]:
    """The dstack app-compose the API would build; its canonical JSON gives compose_hash."""
    app_compose: dict[str, Any] = {
        "allowed_envs": list(allowed_envs),
        "docker_compose_file": docker_compose_file,
        "features": ["kms", "tproxy-net"],
        "gateway_enabled": True,
        "kms_enabled": True,
        "local_key_provider_enabled": False,
        "manifest_version": 2,
        "name": name,
        "no_instance_id": False,
        "public_logs": public_logs,
        "public_sysinfo": public_sysinfo,
        "public_tcbinfo": True,
        "runner": "docker-compose",
        "secure_time": False,
    }
    if pre_launch_script:
        app_compose["pre_launch_script"] = pre_launch_script
    if storage_fs:
        app_compose["storage_fs"] = storage_fs
    return app_compose


def _legacy_kms_info(base_domain: str) -> dict[str, Any]:
    # chain_id must stay null: a non-null chain_id sends the CLI down the on-chain KMS path.
    return {
        "id": KMS_ID,
        "slug": KMS_SLUG,
        "url": f"https://kms.{base_domain}",
        "version": "v0.5.4",
        "chain_id": None,
        "kms_contract_address": None,
        "gateway_app_id": None,
    }


def _uptime_text(cvm: EmulatedCvm) -> str | None:
    if cvm.running_since is None:
        return None
    seconds = int(time.monotonic() - cvm.running_since)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def _norm_method(method: str | None) -> str | None:
    return method.upper() if method else None


def _fault_matches(fault: _ErrorFault | _DelayFault, method: str, path: str) -> bool:
    return (fault.method is None or fault.method == method) and bool(
        fault.path_pattern.search(path)
    )


def _validation_error(location: list[str], message: str) -> ApiError:
    # FastAPI-style 422 body; the CLI prints "Validation failed: <msg>".
    return ApiError(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        [{"loc": location, "msg": message, "type": "value_error"}],
    )


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _validation_error(["body"], "Input should be a valid JSON object")
    return body


def _undecoded_body(raw_body: bytes) -> str | None:
    # Bodies that were not JSON are kept as text so a test can still see what was sent.
    return raw_body.decode("utf-8", "replace") or None


def _make_handler(emulator: PhalaCloudEmulator) -> type[BaseHTTPRequestHandler]:
    class PhalaApiHandler(BaseHTTPRequestHandler):
        # HTTP/1.1 keep-alive like the real API (undici reuses connections); every reply
        # therefore carries Content-Length. Idle connections are dropped after the timeout.
        protocol_version = "HTTP/1.1"
        timeout = 30
        server_version = "PhalaCloudEmulator/1"

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
            # Silence the default stderr access log; the emulator keeps its own log.
            return

        def _dispatch(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query, keep_blank_values=True)
            if self.command == "GET" and url.path.startswith(LOGS_PATH_PREFIX):
                self._serve_container_logs(url.path, query)
                return
            raw_body = self._read_body()
            body: Any = None
            status: int
            payload: Any
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
                status, payload = emulator.handle(
                    self.command,
                    relative_path,
                    query,
                    version,
                    self.headers.get("X-API-Key"),
                    body,
                )
            except ApiError as error:
                status, payload = int(error.status), {"detail": error.detail}
            except Exception as error:  # a bug in the emulator must still answer
                status, payload = 500, {"detail": f"emulator error: {error!r}"}
            emulator._append_log(
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
            self._reply(status, payload)

        def _serve_container_logs(self, path: str, query: dict[str, list[str]]) -> None:
            # The guest agent's log endpoint: no API key (the CLI sends none).
            parts = path[len(LOGS_PATH_PREFIX) :].split("/")
            app_id = parts[0] if parts else ""
            with emulator._lock:
                known = any(cvm.app_id == app_id for cvm in emulator._cvms.values())
            if len(parts) != 3 or parts[1] != "logs" or not known:
                self._reply(HTTPStatus.NOT_FOUND, {"detail": "Not Found"})
                return
            emulator._append_log(
                RequestRecord("GET", path, query, None, None, HTTPStatus.OK, time.time())
            )
            serve_logs(
                self, emulator.container_logs, app_id, unquote(parts[2]), query, emulator._stopping
            )

        def _read_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length > 0 else b""

        def _reply(self, status: int, payload: Any) -> None:
            self.send_response(status)
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


def run_phala(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | str,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the repo's real `phala` CLI (node_modules/.bin/phala) and capture its output."""
    return subprocess.run(
        [str(PHALA_BIN), *args],
        env=dict(env),
        cwd=str(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def parse_json_from_output(text: str) -> Any:
    """Parse the JSON object in CLI stdout, skipping non-JSON lines before it.

    `phala deploy --json` prints `Provisioning CVM <name>...` before the JSON on create.
    """
    start = text.find("{")
    if start < 0:
        raise ValueError(f"no JSON object in output: {text!r}")
    return json.loads(text[start:])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a local Phala Cloud API emulator.")
    parser.add_argument("--port", type=int, default=18777, help="port on 127.0.0.1 (0=any)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--provision-seconds", type=float, default=3.0)
    parser.add_argument("--update-seconds", type=float, default=3.0)
    options = parser.parse_args(argv)
    emulator = PhalaCloudEmulator(
        options.api_key,
        port=options.port,
        provision_seconds=options.provision_seconds,
        update_seconds=options.update_seconds,
    )
    with emulator:
        print(f"PHALA_CLOUD_API_PREFIX={emulator.api_prefix}", flush=True)
        print(f"PHALA_CLOUD_API_KEY={emulator.api_key}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The emulated Phala Cloud account's data: CVMs, the operations they are in, revisions,
and the request log. The behaviour lives in backend.py; every behaviour is listed with its
source in FIDELITY.md.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulators.phala.crypto import AppEnvKeypair

STATUS_STARTING = "starting"
STATUS_RUNNING = "running"
STATUS_STOPPING = "stopping"
STATUS_STOPPED = "stopped"
STATUS_DELETING = "deleting"
STATUS_DELETED = "deleted"
STATUS_ERROR = "error"
STATUS_UPDATING = "updating"

OPERATION_CREATE = "create"
OPERATION_UPDATE = "update"
OPERATION_DELETE = "delete"

DEFAULT_GATEWAY_BASE_DOMAIN = "dstack-emu.phala.network"
DEFAULT_IMAGE = "dstack-0.5.4"
DEFAULT_DEV_IMAGE = "dstack-dev-0.5.4"
DEFAULT_DISK_SIZE_GB = 40
DEFAULT_REGION = "US-WEST-1"
NODE_ID = 1
NODE_NAME = "emu-prod1"
KMS_ID = "kms_emu_phala"
KMS_SLUG = "phala-emu"

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
# dstack's guest env limits (dstack `parse_env_file.rs`): beyond them the CVM cannot boot.
MAX_ENV_ITEMS = 1024
MAX_ENV_VALUE_BYTES = 128 * 1024


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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
class Phase:
    """One step of an operation: from `starts_at` (time.monotonic()) the CVM shows
    `status`; `effect` is applied once, when the phase begins."""

    starts_at: float
    status: str
    in_progress: bool
    effect: Callable[[EmulatedCvm], None] | None = None


def end_in_failure(final: Phase, status: str, boot_error: str | None) -> None:
    """Make an operation's last phase a failure: `status`, settled, with `boot_error`."""
    previous = final.effect

    def fail(target: EmulatedCvm) -> None:
        if previous is not None:
            previous(target)
        target.boot_error = boot_error

    final.status, final.in_progress, final.effect = status, False, fail


@dataclass
class Operation:
    kind: str  # OPERATION_*
    correlation_id: str
    started_at: str
    phases: list[Phase]
    applied: int = 0  # how many phases have begun

    @property
    def done(self) -> bool:
        return self.applied >= len(self.phases)


@dataclass
class PendingUpdate:
    """What an accepted PATCH will put in effect."""

    docker_compose_file: str
    pre_launch_script: str | None
    public_logs: bool
    public_sysinfo: bool
    allowed_envs: list[str]
    env: dict[str, str] | None
    env_pairs: list[tuple[str, str]] | None
    encrypted_env: str | None


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
    operation: Operation | None = None
    boot_error: str | None = None
    running_since: float | None = None
    deleted_at: str | None = None
    revisions: list[CvmRevision] = field(default_factory=list)
    # Times the CVM was stopped and started again (each update's restart counts one).
    restarts: int = 0
    # (time.time(), status, in progress) at each phase it entered, for tests to read.
    history: list[tuple[float, str, bool]] = field(default_factory=list)

    def settled_running_since(self, moment: float) -> float | None:
        """When it first ran with no operation in progress at or after `moment`."""
        for at, status, in_progress in self.history:
            if at >= moment and status == STATUS_RUNNING and not in_progress:
                return at
        return None

    @property
    def env_pubkey_hex(self) -> str:
        return self.keypair.public_hex

    @property
    def operation_type(self) -> str | None:
        return self.operation.kind if self.operation is not None and self.in_progress else None

    @property
    def correlation_id(self) -> str | None:
        return self.operation.correlation_id if self.operation is not None else None

    @property
    def operation_started_at(self) -> str | None:
        return (
            self.operation.started_at if self.operation is not None and self.in_progress else None
        )

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


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
class PendingProvision:
    """What `POST /cvms/provision` promised; `POST /cvms` turns it into a CVM."""

    app_id: str
    request: dict[str, Any]
    app_compose: dict[str, Any]
    compose_hash: str
    keypair: AppEnvKeypair


def image_for(request: Mapping[str, Any]) -> str:
    """The OS image a provision request gets: the named one, else the default (dev or not)."""
    if isinstance(request.get("image"), str) and request["image"]:
        return str(request["image"])
    return DEFAULT_DEV_IMAGE if request.get("prefer_dev") else DEFAULT_IMAGE


def node_device_id() -> str:
    return hashlib.sha256(b"emulated-node").hexdigest()

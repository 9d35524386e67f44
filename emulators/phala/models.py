"""The emulated Phala Cloud account: its CVMs, their lifecycle in time, and test faults.

State only; `routes.py` maps requests onto it and `responses.py` shapes what goes back.
Time is simulated lazily: each CVM carries the schedule of the operation it is in
(create, update, delete), and the phases whose time has come are applied whenever state
is read. No timer threads, so nothing races a test, and a test can end a phase at once
(`finish_pending`) or hold it forever (`make_stuck`). Every behaviour here is listed with
its source in FIDELITY.md.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from emulators.phala import errors
from emulators.phala.behaviour import Behaviour, DeletedView, HashTiming
from emulators.phala.compose import build_app_compose, compose_hash_of
from emulators.phala.crypto import AppEnvKeypair, EnvDecryptionError
from emulators.phala.errors import ApiError, CvmNotFoundError

STATUS_STARTING = "starting"
STATUS_RUNNING = "running"
STATUS_STOPPING = "stopping"
STATUS_STOPPED = "stopped"
STATUS_DELETING = "deleting"
STATUS_DELETED = "deleted"
STATUS_ERROR = "error"

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
class _ErrorFault:
    method: str | None
    path_pattern: re.Pattern[str]
    status: int
    detail: Any
    headers: dict[str, str]
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


class PhalaBackend:
    """The account's state. Thread-safe: every public method takes the lock."""

    def __init__(
        self,
        behaviour: Behaviour,
        *,
        gateway_base_domain: str = DEFAULT_GATEWAY_BASE_DOMAIN,
    ) -> None:
        self.behaviour = behaviour
        self.gateway_base_domain = gateway_base_domain
        self.lock = threading.RLock()
        self._cvms: dict[int, EmulatedCvm] = {}
        self._pending_provisions: dict[str, _PendingProvision] = {}
        self._fates_by_name: dict[str, _CvmFate] = {}
        self._error_faults: list[_ErrorFault] = []
        self._delay_faults: list[_DelayFault] = []
        self._log: list[RequestRecord] = []
        self._recent_calls: deque[float] = deque()
        self._next_numeric_id = 1001

    # ----- lookups -----------------------------------------------------------------------

    def find(self, identifier: str, *, include_deleted: bool = True) -> EmulatedCvm | None:
        """Resolve every id form a client sends to /cvms/{id}, with lifecycle applied.

        Numeric id, UUID with or without dashes, `app_<40hex>`, bare 40-hex,
        `instance_<hex>`, bare instance id, or the name. `app_<hex>` also matches an
        instance id, because the SDK turns any bare 40-hex (which an instance id is) into
        `app_<hex>`. A name resolves to the newest CVM that is not deleted."""
        with self.lock:
            self.advance_all()
            found = self._resolve(identifier)
            if found is not None and found.deleted and not include_deleted:
                return None
            return found

    def _resolve(self, identifier: str) -> EmulatedCvm | None:
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
            if cvm.name == ident and not cvm.deleted:
                return cvm
        return None

    def require(self, identifier: str) -> EmulatedCvm:
        cvm = self.find(identifier)
        if cvm is None:
            raise CvmNotFoundError(identifier)
        return cvm

    def all_cvms(self) -> list[EmulatedCvm]:
        with self.lock:
            self.advance_all()
            return list(self._cvms.values())

    # ----- lifecycle ---------------------------------------------------------------------

    def advance_all(self) -> None:
        now = time.monotonic()
        for cvm in list(self._cvms.values()):
            self._advance(cvm, now)

    def _advance(self, cvm: EmulatedCvm, now: float) -> None:
        operation = cvm.operation
        while operation is not None and not operation.done:
            phase = operation.phases[operation.applied]
            if phase.starts_at > now:
                return
            operation.applied += 1
            self._enter(cvm, phase)
            operation = cvm.operation

    def _enter(self, cvm: EmulatedCvm, phase: Phase) -> None:
        was_running = cvm.status == STATUS_RUNNING
        cvm.status = phase.status
        cvm.in_progress = phase.in_progress
        if phase.effect is not None:
            phase.effect(cvm)
        if cvm.status == STATUS_RUNNING and not was_running:
            cvm.running_since = time.monotonic()
        elif cvm.status != STATUS_RUNNING:
            cvm.running_since = None
        if phase.status == STATUS_STOPPED:
            cvm.restarts += 1
        cvm.updated_at = utc_now_iso()
        cvm.history.append((time.time(), cvm.status, cvm.in_progress))

    def _begin(
        self,
        cvm: EmulatedCvm,
        kind: str,
        steps: list[tuple[float, str, bool]],
        effects: Mapping[int, Callable[[EmulatedCvm], None]],
    ) -> None:
        """Start an operation: `steps` are (seconds after the previous step, status,
        in progress); `effects` by step index. A stuck fate holds the operation at its
        first step; a failure fate ends it in the failure status."""
        now = time.monotonic()
        fate = self._fates_by_name.get(cvm.name)
        phases: list[Phase] = []
        at = now
        for index, (seconds, status, in_progress) in enumerate(steps):
            at += seconds
            phases.append(Phase(at, status, in_progress, effects.get(index)))
        if fate is not None and kind != OPERATION_DELETE:
            if fate.stuck:
                for phase in phases[1:]:
                    phase.starts_at = math.inf
            elif fate.failure_status is not None:
                final = phases[-1]
                final.status = fate.failure_status
                failed_effect = final.effect
                boot_error = fate.boot_error

                def fail(
                    target: EmulatedCvm,
                    previous: Callable[[EmulatedCvm], None] | None = failed_effect,
                    error: str | None = boot_error,
                ) -> None:
                    if previous is not None:
                        previous(target)
                    target.boot_error = error

                final.effect = fail
        cvm.operation = Operation(kind, str(uuid.uuid4()), utc_now_iso(), phases)
        cvm.boot_error = None
        self._advance(cvm, now)

    # ----- create ------------------------------------------------------------------------

    def provision(self, body: dict[str, Any]) -> _PendingProvision:
        with self.lock:
            self.advance_all()
            name = body.get("name")
            if (
                not isinstance(name, str)
                or not (5 <= len(name) <= 63)
                or not CVM_NAME_PATTERN.match(name)
            ):
                raise errors.validation_error(
                    ["body", "name"],
                    "Name must be 5-63 characters, start with letter, and contain only "
                    "letters/numbers/hyphens",
                )
            taken = [c for c in self._cvms.values() if c.name == name and not c.deleted]
            if taken and not self.behaviour.allow_duplicate_names:
                holder = taken[-1]
                raise errors.structured(
                    HTTPStatus.CONFLICT,
                    errors.ERR_DUPLICATE_NAME,
                    f"CVM with name '{name}' already exists"
                    + (" (it is being deleted)" if holder.status == STATUS_DELETING else ""),
                    suggestions=("Choose another name, or wait until the old CVM is deleted",),
                )
            kms = str(body.get("kms") or "PHALA").upper()
            if kms != "PHALA":
                raise errors.structured(
                    HTTPStatus.BAD_REQUEST,
                    errors.ERR_KMS,
                    f"KMS {kms} is not supported by the emulator (only PHALA)",
                )
            compose_file = body.get("compose_file")
            if not isinstance(compose_file, dict):
                raise errors.validation_error(["body", "compose_file"], "Field required")
            docker_compose = compose_file.get("docker_compose_file")
            if not isinstance(docker_compose, str) or not docker_compose.strip():
                raise errors.validation_error(
                    ["body", "compose_file", "docker_compose_file"], "Field required"
                )
            script = compose_file.get("pre_launch_script")
            size = len(docker_compose.encode()) + len((script or "").encode())
            if size > MAX_COMPOSE_AND_SCRIPT_BYTES:
                raise errors.structured(
                    HTTPStatus.BAD_REQUEST,
                    errors.ERR_COMPOSE_TOO_LARGE,
                    "docker_compose_file is too large",
                )
            instance_type = body.get("instance_type")
            if instance_type is not None and instance_type not in INSTANCE_TYPES:
                raise errors.structured(
                    HTTPStatus.BAD_REQUEST,
                    errors.ERR_INSTANCE_TYPE,
                    f"Instance type '{instance_type}' not found",
                )
            app_id = secrets.token_hex(20)
            app_compose = build_app_compose(
                name=name,
                docker_compose_file=docker_compose,
                allowed_envs=[str(key) for key in compose_file.get("allowed_envs") or []],
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
            return pending

    def commit(self, body: dict[str, Any]) -> EmulatedCvm:
        with self.lock:
            self.advance_all()
            app_id = str(body.get("app_id") or "").removeprefix("app_")
            pending = self._pending_provisions.get(app_id)
            if pending is None:
                raise errors.structured(
                    HTTPStatus.NOT_FOUND,
                    errors.ERR_PROVISION_UNKNOWN,
                    f"No pending provision for app_id {app_id}",
                )
            if body.get("compose_hash") != pending.compose_hash:
                raise errors.structured(
                    HTTPStatus.BAD_REQUEST,
                    errors.ERR_PROVISION_UNKNOWN,
                    "compose_hash does not match the provision",
                )
            name = str(pending.request["name"])
            if not self.behaviour.allow_duplicate_names and any(
                c.name == name and not c.deleted for c in self._cvms.values()
            ):
                raise errors.structured(
                    HTTPStatus.CONFLICT,
                    errors.ERR_DUPLICATE_NAME,
                    f"CVM with name '{name}' already exists",
                )
            encrypted_env = body.get("encrypted_env")
            pairs = decrypt_or_reject(pending.keypair, encrypted_env)
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
                name=name,
                instance_type=instance_type,
                vcpu=int(request.get("vcpu") or default_vcpu),
                memory_mb=int(request.get("memory") or default_memory),
                disk_size_gb=int(request.get("disk_size") or DEFAULT_DISK_SIZE_GB),
                image=image_for(request),
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
                in_progress=True,
            )
            self._next_numeric_id += 1
            del self._pending_provisions[app_id]
            self._cvms[cvm.numeric_id] = cvm
            self._record_revision(cvm, "create", env_changed=pairs is not None, pairs=pairs)
            self._begin(
                cvm,
                OPERATION_CREATE,
                [
                    (0.0, STATUS_STARTING, True),
                    (self.behaviour.timings.boot, STATUS_RUNNING, False),
                ],
                {},
            )
            return cvm

    # ----- update ------------------------------------------------------------------------

    def update(self, identifier: str, body: dict[str, Any]) -> tuple[EmulatedCvm, bool]:
        """Accept a PATCH; returns the CVM and whether `allowed_envs` changed."""
        with self.lock:
            cvm = self.require(identifier)
            if cvm.deleted:
                raise CvmNotFoundError(identifier)
            if self.behaviour.busy_refuses_changes and cvm.in_progress:
                raise errors.operation_in_progress(cvm.name, cvm.operation_type or "operation")
            compose = body.get("docker_compose_file", cvm.docker_compose_file)
            if not isinstance(compose, str) or not compose.strip():
                raise errors.validation_error(["body", "docker_compose_file"], "Invalid compose")
            allowed = (
                [str(key) for key in body["allowed_envs"]]
                if isinstance(body.get("allowed_envs"), list)
                else list(cvm.allowed_envs)
            )
            pairs = decrypt_or_reject(cvm.keypair, body.get("encrypted_env"))
            update = PendingUpdate(
                docker_compose_file=compose,
                pre_launch_script=body.get("pre_launch_script", cvm.pre_launch_script),
                public_logs=body["public_logs"]
                if isinstance(body.get("public_logs"), bool)
                else cvm.public_logs,
                public_sysinfo=body["public_sysinfo"]
                if isinstance(body.get("public_sysinfo"), bool)
                else cvm.public_sysinfo,
                allowed_envs=allowed,
                env=dict(pairs) if pairs is not None else None,
                env_pairs=pairs,
                encrypted_env=body.get("encrypted_env") if pairs is not None else None,
            )
            changed_allowed = allowed != cvm.allowed_envs

            def apply(target: EmulatedCvm) -> None:
                self._apply_update(target, update)

            timings = self.behaviour.timings
            at_patch = self.behaviour.hash_timing is HashTiming.AT_PATCH
            first = cvm.status if cvm.status != STATUS_ERROR else STATUS_STOPPED
            steps = [
                (0.0, first, True),
                (timings.update_grace, STATUS_STOPPING, True),
                (timings.stop, STATUS_STOPPED, True),
                (timings.stopped, STATUS_STARTING, True),
                (timings.restart_boot, STATUS_RUNNING, False),
            ]
            self._begin(cvm, OPERATION_UPDATE, steps, {0 if at_patch else len(steps) - 1: apply})
            return cvm, changed_allowed

    def _apply_update(self, cvm: EmulatedCvm, update: PendingUpdate) -> None:
        cvm.docker_compose_file = update.docker_compose_file
        cvm.pre_launch_script = update.pre_launch_script
        cvm.public_logs = update.public_logs
        cvm.public_sysinfo = update.public_sysinfo
        cvm.allowed_envs = list(update.allowed_envs)
        if update.env is not None:
            cvm.env = dict(update.env)
            cvm.encrypted_env = update.encrypted_env
        self._recompute_compose(cvm)
        self._record_revision(
            cvm, "update", env_changed=update.env is not None, pairs=update.env_pairs
        )

    # ----- delete ------------------------------------------------------------------------

    def delete(self, identifier: str) -> EmulatedCvm:
        with self.lock:
            cvm = self.require(identifier)
            if cvm.deleted:
                raise CvmNotFoundError(identifier)
            if cvm.status == STATUS_DELETING:
                return cvm  # deleting already: the same answer, nothing new starts
            if self.behaviour.busy_refuses_changes and cvm.in_progress:
                raise errors.operation_in_progress(cvm.name, cvm.operation_type or "operation")

            def finish(target: EmulatedCvm) -> None:
                self._finish_delete(target)

            self._begin(
                cvm,
                OPERATION_DELETE,
                [
                    (0.0, STATUS_DELETING, True),
                    (self.behaviour.timings.delete, STATUS_DELETED, False),
                ],
                {1: finish},
            )
            return cvm

    def _finish_delete(self, cvm: EmulatedCvm) -> None:
        if self.behaviour.deleted_view is DeletedView.GONE:
            self._cvms.pop(cvm.numeric_id, None)
        cvm.deleted_at = utc_now_iso()

    # ----- helpers -----------------------------------------------------------------------

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

    # ----- rate limit, faults and the request log ----------------------------------------

    def take_rate_slot(self) -> float | None:
        """None when the call may proceed, else the seconds until a slot frees."""
        limit = self.behaviour.rate_limit
        if limit is None:
            return None
        with self.lock:
            now = time.monotonic()
            while self._recent_calls and self._recent_calls[0] <= now - limit.seconds:
                self._recent_calls.popleft()
            if len(self._recent_calls) >= limit.requests:
                return self._recent_calls[0] + limit.seconds - now
            self._recent_calls.append(now)
            return None

    def add_error_fault(
        self,
        method: str | None,
        path_regex: str,
        status: int,
        detail: Any,
        headers: dict[str, str],
        times: int | None,
    ) -> None:
        with self.lock:
            self._error_faults.append(
                _ErrorFault(method, re.compile(path_regex), status, detail, headers, times)
            )

    def add_delay_fault(
        self, method: str | None, path_regex: str, seconds: float, times: int | None
    ) -> None:
        with self.lock:
            self._delay_faults.append(_DelayFault(method, re.compile(path_regex), seconds, times))

    def take_delay(self, method: str, path: str) -> float:
        with self.lock:
            for fault in self._delay_faults:
                if _fault_matches(fault, method, path):
                    _consume(self._delay_faults, fault)
                    return fault.seconds
        return 0.0

    def take_error(self, method: str, path: str) -> ApiError | None:
        with self.lock:
            for fault in self._error_faults:
                if _fault_matches(fault, method, path):
                    _consume(self._error_faults, fault)
                    return ApiError(fault.status, fault.detail, fault.headers)
        return None

    def clear_faults(self) -> None:
        with self.lock:
            self._error_faults.clear()
            self._delay_faults.clear()
            self._fates_by_name.clear()

    def append_log(self, record: RequestRecord) -> None:
        with self.lock:
            self._log.append(record)

    def log(self) -> list[RequestRecord]:
        with self.lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self.lock:
            self._log.clear()

    # ----- out-of-band changes, for tests ------------------------------------------------

    def set_fate(self, name: str, fate: _CvmFate) -> None:
        with self.lock:
            self._fates_by_name[name] = fate

    def make_stuck(self, identifier: str) -> None:
        with self.lock:
            cvm = self.find(identifier)
            if cvm is None:
                self._fates_by_name[identifier] = _CvmFate(stuck=True)
                return
            self._fates_by_name[cvm.name] = _CvmFate(stuck=True)
            if cvm.operation is not None and not cvm.operation.done:
                for phase in cvm.operation.phases[cvm.operation.applied :]:
                    phase.starts_at = math.inf
            elif cvm.status == STATUS_RUNNING:
                # A running CVM can only be "stuck" on its way somewhere: park it booting.
                steps = [(0.0, STATUS_STARTING, True), (math.inf, STATUS_RUNNING, False)]
                self._begin(cvm, OPERATION_UPDATE, steps, {})

    def make_failing(self, identifier: str, status: str, boot_error: str) -> None:
        fate = _CvmFate(failure_status=status, boot_error=boot_error)
        with self.lock:
            cvm = self.find(identifier)
            if cvm is None:
                self._fates_by_name[identifier] = fate
                return
            self._fates_by_name[cvm.name] = fate
            operation = cvm.operation
            if operation is not None and not operation.done:
                final = operation.phases[-1]
                final.status, final.in_progress = status, False
                previous = final.effect

                def fail(target: EmulatedCvm) -> None:
                    if previous is not None:
                        previous(target)
                    target.boot_error = boot_error

                final.effect = fail
            else:
                cvm.operation = None
                cvm.status, cvm.in_progress, cvm.boot_error = status, False, boot_error
                cvm.running_since = None

    def set_status(self, identifier: str, status: str, in_progress: bool) -> None:
        with self.lock:
            cvm = self.require(identifier)
            cvm.operation = None
            cvm.status = status
            cvm.in_progress = in_progress
            cvm.running_since = time.monotonic() if status == STATUS_RUNNING else None
            cvm.history.append((time.time(), status, in_progress))

    def finish_pending(self, identifier: str) -> None:
        """Run the rest of a CVM's operation now, with the outcome it was going to have."""
        with self.lock:
            cvm = self.require(identifier)
            operation = cvm.operation
            if operation is None:
                return
            now = time.monotonic()
            for phase in operation.phases[operation.applied :]:
                phase.starts_at = now
            self._advance(cvm, now)

    def step(self, identifier: str) -> str:
        """Begin a CVM's next phase now (whatever its timing); the status it shows then."""
        with self.lock:
            cvm = self.require(identifier)
            operation = cvm.operation
            if operation is not None and not operation.done:
                now = time.monotonic()
                pending = operation.phases[operation.applied :]
                # The phases after it keep their durations.
                shift = now - pending[0].starts_at if math.isfinite(pending[0].starts_at) else 0
                pending[0].starts_at = now
                for phase in pending[1:]:
                    phase.starts_at += shift
                self._advance(cvm, now)
            return cvm.status

    def delete_behind_back(self, identifier: str) -> None:
        with self.lock:
            cvm = self.require(identifier)
            del self._cvms[cvm.numeric_id]

    def change_compose_externally(
        self,
        identifier: str,
        docker_compose_file: str,
        env: Mapping[str, str] | None,
        pre_launch_script: str | None,
    ) -> str:
        with self.lock:
            cvm = self.require(identifier)
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

    def snapshot(self, cvm: EmulatedCvm) -> EmulatedCvm:
        """A deep copy a test may keep."""
        with self.lock:
            return copy.deepcopy(cvm)


def decrypt_or_reject(keypair: AppEnvKeypair, encrypted_env: Any) -> list[tuple[str, str]] | None:
    """The env pairs, or None when none was sent. The real API cannot read the env (only
    the TEE can, and an undecryptable env fails its boot); the emulator refuses it at once
    so a broken client fails loudly. dstack's limits are checked the same way."""
    if encrypted_env is None or encrypted_env == "":
        return None
    if not isinstance(encrypted_env, str):
        raise errors.validation_error(["body", "encrypted_env"], "Input should be a valid string")
    try:
        pairs = keypair.decrypt_env(encrypted_env)
    except EnvDecryptionError as error:
        raise errors.structured(
            HTTPStatus.BAD_REQUEST,
            errors.ERR_ENV_UNREADABLE,
            f"encrypted_env could not be decrypted: {error}",
        ) from error
    if len(pairs) > MAX_ENV_ITEMS:
        raise errors.structured(
            HTTPStatus.BAD_REQUEST,
            errors.ERR_ENV_UNREADABLE,
            f"too many env items ({len(pairs)} > {MAX_ENV_ITEMS})",
        )
    for key, value in pairs:
        if len(value.encode()) > MAX_ENV_VALUE_BYTES:
            raise errors.structured(
                HTTPStatus.BAD_REQUEST,
                errors.ERR_ENV_UNREADABLE,
                f"env value of {key} exceeds {MAX_ENV_VALUE_BYTES} bytes",
            )
    return pairs


def image_for(request: Mapping[str, Any]) -> str:
    """The OS image a provision request gets: the named one, else the default (dev or not)."""
    if isinstance(request.get("image"), str) and request["image"]:
        return str(request["image"])
    return DEFAULT_DEV_IMAGE if request.get("prefer_dev") else DEFAULT_IMAGE


def node_device_id() -> str:
    return hashlib.sha256(b"emulated-node").hexdigest()


def _fault_matches(fault: _ErrorFault | _DelayFault, method: str, path: str) -> bool:
    return (fault.method is None or fault.method == method) and bool(
        fault.path_pattern.search(path)
    )


def _consume(faults: list[Any], fault: _ErrorFault | _DelayFault) -> None:
    if fault.remaining is not None:
        fault.remaining -= 1
        if fault.remaining <= 0:
            faults.remove(fault)

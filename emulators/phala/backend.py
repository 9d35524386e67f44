"""The emulated Phala Cloud account: CVMs and their lifecycle in time.

Time is simulated lazily: each CVM carries the schedule of the operation it is in (create,
update, delete), and the phases whose time has come are applied whenever state is read.
No timer threads, so nothing races a test, and a test can end a phase at once or hold it
(steering.py). What each operation shows, phase by phase, follows the sources in
FIDELITY.md; where they are silent, `Behaviour` (behaviour.py) chooses among the plausible
answers.
"""

from __future__ import annotations

import copy
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from emulators.phala import errors
from emulators.phala.behaviour import (
    Behaviour,
    DeletedView,
    DeletingView,
    HashTiming,
    UpdateStatuses,
)
from emulators.phala.compose import build_app_compose, compose_hash_of
from emulators.phala.crypto import AppEnvKeypair
from emulators.phala.errors import CvmNotFoundError
from emulators.phala.faults import FaultBook, RateLimiter
from emulators.phala.models import (
    DEFAULT_DISK_SIZE_GB,
    DEFAULT_GATEWAY_BASE_DOMAIN,
    DEFAULT_REGION,
    HEX40_PATTERN,
    INSTANCE_TYPES,
    OPERATION_CREATE,
    OPERATION_DELETE,
    OPERATION_UPDATE,
    STATUS_DELETED,
    STATUS_DELETING,
    STATUS_ERROR,
    STATUS_RUNNING,
    STATUS_STARTING,
    STATUS_STOPPED,
    STATUS_STOPPING,
    STATUS_UPDATING,
    UUID4_PATTERN,
    CvmRevision,
    EmulatedCvm,
    Operation,
    PendingProvision,
    PendingUpdate,
    Phase,
    RequestRecord,
    end_in_failure,
    image_for,
    utc_now_iso,
)
from emulators.phala.steering import SteeringMixin
from emulators.phala.validation import checked_provision, decrypt_or_reject

Steps = list[tuple[float, str, bool]]  # (seconds after the previous step, status, in progress)


class PhalaBackend(SteeringMixin):
    """The account's state. Thread-safe: every public method takes the lock."""

    def __init__(
        self, behaviour: Behaviour, *, gateway_base_domain: str = DEFAULT_GATEWAY_BASE_DOMAIN
    ) -> None:
        self.behaviour = behaviour
        self.gateway_base_domain = gateway_base_domain
        self.lock = threading.RLock()
        self.faults = FaultBook()
        self.rate_limiter = RateLimiter()
        self._cvms: dict[int, EmulatedCvm] = {}
        self._pending_provisions: dict[str, PendingProvision] = {}
        self._log: list[RequestRecord] = []
        self._next_numeric_id = 1001

    # ----- lookups -----------------------------------------------------------------------

    def find(self, identifier: str) -> EmulatedCvm | None:
        """Resolve every id form a client sends to /cvms/{id}, with lifecycle applied.

        Numeric id, UUID with or without dashes, `app_<40hex>`, bare 40-hex,
        `instance_<hex>`, bare instance id, or the name. `app_<hex>` also matches an
        instance id, because the SDK turns any bare 40-hex (which an instance id is) into
        `app_<hex>`. A name resolves to the newest CVM that is not deleted."""
        with self.lock:
            self.advance_all()
            return self._resolve(identifier)

    def _resolve(self, identifier: str) -> EmulatedCvm | None:
        ident = identifier.strip()
        lowered = ident.lower()
        candidates = list(self._cvms.values())
        if ident.isdigit() and int(ident) in self._cvms:
            return self._cvms[int(ident)]
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
        """The CVM as a client's GET sees it: a CVM whose deletion the service hides at
        once is already gone."""
        cvm = self.find(identifier)
        if cvm is None or (cvm.status == STATUS_DELETING and self._hides_deleting()):
            raise CvmNotFoundError(identifier)
        return cvm

    def visible(self) -> list[EmulatedCvm]:
        """Every CVM a listing shows, oldest first."""
        with self.lock:
            self.advance_all()
            hide = self._hides_deleting()
            return [c for c in self._cvms.values() if not (hide and c.status == STATUS_DELETING)]

    def all_cvms(self) -> list[EmulatedCvm]:
        """Every CVM this account holds, tombstones and hidden deletions included."""
        with self.lock:
            self.advance_all()
            return list(self._cvms.values())

    def snapshot(self, cvm: EmulatedCvm) -> EmulatedCvm:
        """A deep copy a test may keep."""
        with self.lock:
            return copy.deepcopy(cvm)

    def _hides_deleting(self) -> bool:
        return self.behaviour.deleting_view is DeletingView.HIDDEN

    def _holds_name(self, cvm: EmulatedCvm) -> bool:
        if cvm.deleted:
            return False
        return cvm.status != STATUS_DELETING or not self._hides_deleting()

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
        if phase.status in (STATUS_STOPPED, STATUS_UPDATING) and phase.in_progress:
            cvm.restarts += 1
        cvm.updated_at = utc_now_iso()
        # When the phase began by its schedule (phases are applied lazily, when read).
        began = time.time() - max(0.0, time.monotonic() - phase.starts_at)
        cvm.history.append((began, cvm.status, cvm.in_progress))

    def _begin(
        self,
        cvm: EmulatedCvm,
        kind: str,
        steps: Steps,
        effects: Mapping[int, Callable[[EmulatedCvm], None]],
    ) -> None:
        """Start an operation. A stuck fate holds it at its first step; a failure fate ends
        it in the failure status."""
        now = time.monotonic()
        fate = self.faults.fates.get(cvm.name)
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
                end_in_failure(phases[-1], fate.failure_status, fate.boot_error)
        cvm.operation = Operation(kind, str(uuid.uuid4()), utc_now_iso(), phases)
        cvm.boot_error = None
        self._advance(cvm, now)

    # ----- create ------------------------------------------------------------------------

    def provision(self, body: dict[str, Any]) -> PendingProvision:
        with self.lock:
            self.advance_all()
            name, compose_file = checked_provision(body)
            self._refuse_taken_name(name)
            app_compose = build_app_compose(
                name=name,
                docker_compose_file=compose_file["docker_compose_file"],
                allowed_envs=[str(key) for key in compose_file.get("allowed_envs") or []],
                public_logs=bool(compose_file.get("public_logs", True)),
                public_sysinfo=bool(compose_file.get("public_sysinfo", True)),
                pre_launch_script=compose_file.get("pre_launch_script"),
                storage_fs=compose_file.get("storage_fs"),
            )
            pending = PendingProvision(
                app_id=secrets.token_hex(20),
                request=copy.deepcopy(body),
                app_compose=app_compose,
                compose_hash=compose_hash_of(app_compose),
                keypair=AppEnvKeypair.generate(),
            )
            self._pending_provisions[pending.app_id] = pending
            return pending

    def _refuse_taken_name(self, name: str) -> None:
        if self.behaviour.allow_duplicate_names:
            return
        holders = [c for c in self._cvms.values() if c.name == name and self._holds_name(c)]
        if holders:
            dying = holders[-1].status == STATUS_DELETING
            raise errors.structured(
                HTTPStatus.CONFLICT,
                errors.ERR_DUPLICATE_CVM_NAME,
                f"A CVM with name '{name}' already exists in this workspace"
                + (" (it is being deleted)" if dying else ""),
                suggestions=("Choose another name, or delete the existing CVM first",),
            )

    def commit(self, body: dict[str, Any]) -> EmulatedCvm:
        with self.lock:
            self.advance_all()
            app_id = str(body.get("app_id") or "").removeprefix("app_")
            pending = self._pending_provisions.get(app_id)
            if pending is None or body.get("compose_hash") != pending.compose_hash:
                what = "No pending provision" if pending is None else "compose_hash mismatch"
                raise errors.structured(
                    HTTPStatus.BAD_REQUEST, errors.ERR_INVALID_REQUEST, f"{what} for {app_id}"
                )
            request = pending.request
            self._refuse_taken_name(str(request["name"]))
            encrypted_env = body.get("encrypted_env")
            pairs = decrypt_or_reject(pending.keypair, encrypted_env)
            cvm = self._new_cvm(pending, pairs, encrypted_env)
            del self._pending_provisions[app_id]
            self._cvms[cvm.numeric_id] = cvm
            self._record_revision(cvm, "create", env_changed=pairs is not None, pairs=pairs)
            boot = self.behaviour.timings.boot
            steps = [(0.0, STATUS_STARTING, True), (boot, STATUS_RUNNING, False)]
            self._begin(cvm, OPERATION_CREATE, steps, {})
            return cvm

    def _new_cvm(
        self, pending: PendingProvision, pairs: list[tuple[str, str]] | None, encrypted_env: Any
    ) -> EmulatedCvm:
        request = pending.request
        compose_file = request["compose_file"]
        instance_type = request.get("instance_type")
        vcpu, memory = INSTANCE_TYPES.get(instance_type or "", INSTANCE_TYPES["tdx.small"])
        now = utc_now_iso()
        cvm = EmulatedCvm(
            numeric_id=self._next_numeric_id,
            vm_uuid=str(uuid.uuid4()),
            app_id=pending.app_id,
            instance_id=secrets.token_hex(20),
            name=str(request["name"]),
            instance_type=instance_type,
            vcpu=int(request.get("vcpu") or vcpu),
            memory_mb=int(request.get("memory") or memory),
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
        return cvm

    # ----- update ------------------------------------------------------------------------

    def update(self, identifier: str, body: dict[str, Any]) -> tuple[EmulatedCvm, bool]:
        """Accept a PATCH; returns the CVM and whether `allowed_envs` changed."""
        with self.lock:
            cvm = self.require(identifier)
            if cvm.deleted:
                raise CvmNotFoundError(identifier)
            if self.behaviour.busy_refuses_changes and cvm.in_progress:
                raise errors.operation_in_progress()
            compose = body.get("docker_compose_file", cvm.docker_compose_file)
            if not isinstance(compose, str) or not compose.strip():
                raise errors.validation_error(["body", "docker_compose_file"], "Invalid compose")
            pairs = decrypt_or_reject(cvm.keypair, body.get("encrypted_env"))
            update = _pending_update(cvm, body, compose, pairs)
            changed_allowed = update.allowed_envs != cvm.allowed_envs
            steps = self._update_steps(cvm.status)
            at_patch = self.behaviour.hash_timing is HashTiming.AT_PATCH
            apply_at = 0 if at_patch else len(steps) - 1
            self._begin(cvm, OPERATION_UPDATE, steps, {apply_at: self._applier(update)})
            return cvm, changed_allowed

    def _update_steps(self, status: str) -> Steps:
        timings = self.behaviour.timings
        first = status if status != STATUS_ERROR else STATUS_STOPPED
        if self.behaviour.update_statuses is UpdateStatuses.UPDATING:
            restart = timings.update_grace + timings.stop + timings.stopped
            return [
                (0.0, first, True),
                (0.0, STATUS_UPDATING, True),
                (restart + timings.restart_boot, STATUS_RUNNING, False),
            ]
        return [
            (0.0, first, True),
            (timings.update_grace, STATUS_STOPPING, True),
            (timings.stop, STATUS_STOPPED, True),
            (timings.stopped, STATUS_STARTING, True),
            (timings.restart_boot, STATUS_RUNNING, False),
        ]

    def _applier(self, update: PendingUpdate) -> Callable[[EmulatedCvm], None]:
        def apply(cvm: EmulatedCvm) -> None:
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

        return apply

    # ----- delete ------------------------------------------------------------------------

    def delete(self, identifier: str) -> EmulatedCvm:
        with self.lock:
            cvm = self.require(identifier)
            if cvm.deleted:
                raise CvmNotFoundError(identifier)
            if cvm.status == STATUS_DELETING:
                return cvm  # deleting already: the same answer, nothing new starts
            if self.behaviour.busy_refuses_changes and cvm.in_progress:
                raise errors.operation_in_progress()
            steps = [
                (0.0, STATUS_DELETING, True),
                (self.behaviour.timings.delete, STATUS_DELETED, False),
            ]
            # A plain function (not a bound method), so a snapshot's deep copy leaves the
            # backend alone.
            self._begin(cvm, OPERATION_DELETE, steps, {1: lambda done: self._finish_delete(done)})
            return cvm

    def _finish_delete(self, cvm: EmulatedCvm) -> None:
        if self.behaviour.deleted_view is DeletedView.GONE:
            self._cvms.pop(cvm.numeric_id, None)
        cvm.deleted_at = utc_now_iso()

    # ----- compose and revisions ---------------------------------------------------------

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

    # ----- the request log ---------------------------------------------------------------

    def append_log(self, record: RequestRecord) -> None:
        with self.lock:
            self._log.append(record)

    def log(self) -> list[RequestRecord]:
        with self.lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self.lock:
            self._log.clear()


def _pending_update(
    cvm: EmulatedCvm, body: dict[str, Any], compose: str, pairs: list[tuple[str, str]] | None
) -> PendingUpdate:
    """What a PATCH will put in effect: only the fields it names change."""
    return PendingUpdate(
        docker_compose_file=compose,
        pre_launch_script=body.get("pre_launch_script", cvm.pre_launch_script),
        public_logs=body["public_logs"]
        if isinstance(body.get("public_logs"), bool)
        else cvm.public_logs,
        public_sysinfo=body["public_sysinfo"]
        if isinstance(body.get("public_sysinfo"), bool)
        else cvm.public_sysinfo,
        allowed_envs=[str(key) for key in body["allowed_envs"]]
        if isinstance(body.get("allowed_envs"), list)
        else list(cvm.allowed_envs),
        env=dict(pairs) if pairs is not None else None,
        env_pairs=pairs,
        encrypted_env=body.get("encrypted_env") if pairs is not None else None,
    )

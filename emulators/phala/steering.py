"""Steering the emulated service from outside, as tests and the sandbox need: hold a CVM
where it is, make it fail, step or finish its operation now, force a status, or change it
behind the clients' back (a delete in the dashboard, a compose edited by hand)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from emulators.phala.faults import CvmFate
from emulators.phala.models import (
    OPERATION_UPDATE,
    STATUS_RUNNING,
    STATUS_STARTING,
    end_in_failure,
    utc_now_iso,
)

if TYPE_CHECKING:
    from emulators.phala.faults import FaultBook
    from emulators.phala.models import EmulatedCvm


class SteeringMixin:
    """Mixed into PhalaBackend, whose state and lifecycle these methods drive."""

    if TYPE_CHECKING:
        lock: threading.RLock
        faults: FaultBook
        _cvms: dict[int, EmulatedCvm]

        def find(self, identifier: str) -> EmulatedCvm | None: ...
        def require(self, identifier: str) -> EmulatedCvm: ...
        def _advance(self, cvm: EmulatedCvm, now: float) -> None: ...
        def _begin(
            self,
            cvm: EmulatedCvm,
            kind: str,
            steps: list[tuple[float, str, bool]],
            effects: Mapping[int, Callable[[EmulatedCvm], None]],
        ) -> None: ...
        def _recompute_compose(self, cvm: EmulatedCvm) -> None: ...
        def _record_revision(
            self,
            cvm: EmulatedCvm,
            source: str,
            *,
            env_changed: bool,
            pairs: list[tuple[str, str]] | None,
        ) -> None: ...

    def make_stuck(self, identifier: str) -> None:
        """Hold a CVM where it is on its way (a running one is parked booting); a name not
        yet created is held at the start of its boot."""
        with self.lock:
            cvm = self.find(identifier)
            if cvm is None:
                self.faults.fates[identifier] = CvmFate(stuck=True)
                return
            self.faults.fates[cvm.name] = CvmFate(stuck=True)
            if cvm.operation is not None and not cvm.operation.done:
                for phase in cvm.operation.phases[cvm.operation.applied :]:
                    phase.starts_at = math.inf
            elif cvm.status == STATUS_RUNNING:
                steps = [(0.0, STATUS_STARTING, True), (math.inf, STATUS_RUNNING, False)]
                self._begin(cvm, OPERATION_UPDATE, steps, {})

    def hold_next_operation(self, name: str) -> None:
        """Hold the next operation of the CVM named `name` at its first phase, without
        touching where the CVM is now (reset_faults and finish_pending release it)."""
        with self.lock:
            self.faults.fates[name] = CvmFate(stuck=True)

    def make_failing(self, identifier: str, status: str, boot_error: str) -> None:
        """End a CVM's current or next operation in `status` (at once if it is settled)."""
        fate = CvmFate(failure_status=status, boot_error=boot_error)
        with self.lock:
            cvm = self.find(identifier)
            if cvm is None:
                self.faults.fates[identifier] = fate
                return
            self.faults.fates[cvm.name] = fate
            operation = cvm.operation
            if operation is not None and not operation.done:
                end_in_failure(operation.phases[-1], status, boot_error)
            else:
                cvm.operation = None
                cvm.status, cvm.in_progress, cvm.boot_error = status, False, boot_error
                cvm.running_since = None

    def set_status(self, identifier: str, status: str, in_progress: bool) -> None:
        """Force a status and cancel the CVM's operation."""
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
            cvm = self._any(identifier)
            operation = cvm.operation
            if operation is None:
                return
            now = time.monotonic()
            for phase in operation.phases[operation.applied :]:
                phase.starts_at = now
            self._advance(cvm, now)

    def step(self, identifier: str) -> str:
        """Begin a CVM's next phase now (the phases after it keep their durations);
        returns the status it shows then."""
        with self.lock:
            cvm = self._any(identifier)
            operation = cvm.operation
            if operation is not None and not operation.done:
                now = time.monotonic()
                pending = operation.phases[operation.applied :]
                shift = now - pending[0].starts_at if math.isfinite(pending[0].starts_at) else 0
                pending[0].starts_at = now
                for phase in pending[1:]:
                    phase.starts_at += shift
                self._advance(cvm, now)
            return cvm.status

    def delete_behind_back(self, identifier: str) -> None:
        """Remove a CVM at once, as if someone deleted it in the dashboard long ago."""
        with self.lock:
            cvm = self._any(identifier)
            del self._cvms[cvm.numeric_id]

    def change_compose_externally(
        self,
        identifier: str,
        docker_compose_file: str,
        env: Mapping[str, str] | None,
        pre_launch_script: str | None,
    ) -> str:
        """Change a CVM's compose (and env) outside any client; returns the new hash."""
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

    def _any(self, identifier: str) -> EmulatedCvm:
        """The CVM whatever a client's GET would show of it (a hidden deletion too)."""
        from emulators.phala.errors import CvmNotFoundError

        cvm = self.find(identifier)
        if cvm is None:
            raise CvmNotFoundError(identifier)
        return cvm

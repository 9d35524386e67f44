"""Waiting on the Phala API: until a CVM has settled where it was sent, until a busy CVM
is free, until a deleted CVM is gone. The driver polls on its own, every `poll_seconds`,
for at most `phalaWaitTimeoutSeconds` (the CLI's own `--wait` gives up after 300 s and
looks only at `status`, not at whether an operation is still in progress).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from driver import cvm_state
from driver.errors import DriverError


class CvmReader(Protocol):
    def get_cvm(self, cvm_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Expected:
    """What a settled CVM must serve after our change: this compose, these env names."""

    compose: str
    env_names: Collection[str]


class Gone(DriverError):
    """The CVM disappeared (or is being deleted) while we waited for it to settle."""


@dataclass
class Deadline:
    seconds: float
    clock: Callable[[], float] = time.monotonic
    _ends: float = field(init=False)

    def __post_init__(self) -> None:
        self._ends = self.clock() + self.seconds

    @property
    def passed(self) -> bool:
        return self.clock() >= self._ends


@dataclass
class Waiter:
    api: CvmReader
    name: str
    timeout_seconds: int
    poll_seconds: float
    log: Callable[[str], None]
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def deadline(self) -> Deadline:
        return Deadline(self.timeout_seconds, self.clock)

    def _timed_out(self, cvm_id: str, waiting_for: str, cvm: dict[str, Any] | None) -> DriverError:
        state = "gone" if cvm is None else cvm_state.status_of(cvm)
        if cvm is not None and cvm_state.in_progress(cvm):
            state += " (an operation in progress)"
        return DriverError(
            f"CVM {self.name} ({cvm_id}) was still {state} after {self.timeout_seconds}s "
            f"(phalaWaitTimeoutSeconds), waiting {waiting_for}; a re-run continues from "
            "where this stopped"
        )

    def until_settled(
        self, cvm_id: str, expected: Expected | None, deadline: Deadline | None = None
    ) -> dict[str, Any]:
        """The CVM once it runs, no operation is in progress, and it serves `expected`.

        A status on the way (stopping, stopped, starting) is only a phase while an
        operation is in progress; a settled failure status fails at once."""
        deadline = deadline or self.deadline()
        announced_old_compose = False
        while True:
            cvm = self.api.get_cvm(cvm_id)
            if cvm is None or cvm_state.is_dying(cvm):
                what = "deleted" if cvm is None else cvm_state.status_of(cvm)
                raise Gone(f"CVM {self.name} ({cvm_id}) is {what}: it went away while deploying")
            if not cvm_state.in_progress(cvm):
                failure = cvm_state.settled_failure(cvm)
                if failure is not None:
                    detail = cvm.get("boot_error") or cvm.get("error")
                    raise DriverError(
                        f"CVM {self.name} ({cvm_id}) is {failure}, not running"
                        + (f": {detail}" if detail else "")
                    )
                if cvm_state.status_of(cvm) == cvm_state.RUNNING:
                    serving = (
                        True
                        if expected is None
                        else cvm_state.serves(cvm, expected.compose, expected.env_names)
                    )
                    if serving is not False:
                        return cvm
                    if not announced_old_compose:
                        self.log(f"CVM {self.name} still runs its previous compose; waiting")
                        announced_old_compose = True
            if deadline.passed:
                raise self._timed_out(cvm_id, "for it to run what was deployed", cvm)
            self.sleep(self.poll_seconds)

    def until_free(self, cvm_id: str, deadline: Deadline) -> dict[str, Any] | None:
        """The CVM once no operation runs on it; None if it is (or goes) away."""
        announced = False
        while True:
            cvm = self.api.get_cvm(cvm_id)
            if cvm is None or cvm_state.is_dying(cvm):
                return None
            if not cvm_state.in_progress(cvm):
                return cvm
            if not announced:
                progress = cvm.get("progress") if isinstance(cvm.get("progress"), dict) else {}
                target = progress.get("target") if isinstance(progress, dict) else None
                self.log(
                    f"CVM {self.name} ({cvm_id}) is busy ({cvm_state.status_of(cvm)}"
                    + (f", heading for {target}" if target else "")
                    + "); waiting until it is free"
                )
                announced = True
            if deadline.passed:
                raise self._timed_out(cvm_id, "for another operation to end", cvm)
            self.sleep(self.poll_seconds)

    def until_gone(self, cvm_id: str, deadline: Deadline) -> None:
        """Return once the CVM no longer exists (404, or status deleted)."""
        announced = False
        while True:
            cvm = self.api.get_cvm(cvm_id)
            if cvm is None or cvm_state.is_deleted(cvm):
                return
            if not announced:
                self.log(f"waiting for CVM {self.name} ({cvm_id}) to be deleted")
                announced = True
            if deadline.passed:
                raise self._timed_out(cvm_id, "for its deletion to finish", cvm)
            self.sleep(self.poll_seconds)

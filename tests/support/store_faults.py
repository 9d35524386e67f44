"""Faults a test injects into the R2 front (tests/support/r2_front.py), and the record
of each request it saw.

`fail` answers matching requests with an S3 error instead of forwarding them, `delay`
answers them late, `hold` keeps them until the test releases them (forwarded) or drops
them (never forwarded nor answered: a write cut off with its writer), and `outage`
refuses everything from a trigger on until its block ends. A held or refused request is
an event the test can wait on, with a bound, instead of sleeping.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass
class StoreRequest:
    """One request as the front saw it."""

    method: str
    bucket: str
    key: str
    query: dict[str, str]
    region: str | None
    access_key_id: str | None
    attempt: int | None  # from the SDK's amz-sdk-request header; None if absent
    is_copy: bool  # a CopyObject (PUT with x-amz-copy-source)
    # "forwarded", "refused: <code>", "failed <status>", "held", "dropped" or "delayed"
    outcome: str = "forwarded"
    status: int | None = None
    seconds: float = 0.0  # from the request line to the last byte of the answer

    @property
    def operation(self) -> str:
        if self.method == "GET" and not self.key:
            return "LIST"
        if self.method == "PUT" and self.is_copy:
            return "COPY"
        return self.method


Matcher = Callable[[StoreRequest], bool]


@dataclass
class Fault:
    matches: Matcher
    status: int | None = None  # answer with this S3 error instead of forwarding
    delay_seconds: float = 0.0
    gate: threading.Event | None = None  # hold until set
    times: int | None = 1  # None: every matching request
    dropped: bool = False  # a held request let go unanswered, never forwarded
    seen: list[StoreRequest] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_seen(self, count: int, timeout: float, what: str) -> list[StoreRequest]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.seen) >= count, timeout):
                raise AssertionError(f"fewer than {count} request(s) {what} in {timeout:.0f}s")
            return list(self.seen)


class Hold:
    """Requests kept by the front until `release()` or `drop()`."""

    def __init__(self, faults: StoreFaults, fault: Fault) -> None:
        self._faults = faults
        self._fault = fault

    def wait_for(self, count: int = 1, timeout: float = 120.0) -> list[StoreRequest]:
        return self._fault.wait_seen(count, timeout, "reached the hold")

    def release(self) -> None:
        assert self._fault.gate is not None
        self._faults.remove(self._fault)
        self._fault.gate.set()

    def drop(self) -> None:
        self._fault.dropped = True
        self.release()


class Outage:
    """What an outage refused so far."""

    def __init__(self, fault: Fault) -> None:
        self._fault = fault

    @property
    def refused(self) -> list[StoreRequest]:
        with self._fault.arrived:
            return list(self._fault.seen)

    def wait_refused(self, count: int, timeout: float = 120.0) -> list[StoreRequest]:
        return self._fault.wait_seen(count, timeout, "met the outage")


class StoreFaults:
    """The faults in force, first match first; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def fail(self, matches: Matcher, *, status: int = 503, times: int | None = 1) -> None:
        self._add(Fault(matches, status=status, times=times))

    def delay(self, matches: Matcher, seconds: float, *, times: int | None = 1) -> None:
        self._add(Fault(matches, delay_seconds=seconds, times=times))

    def hold(self, matches: Matcher, *, times: int | None = 1) -> Hold:
        fault = Fault(matches, gate=threading.Event(), times=times)
        self._add(fault)
        return Hold(self, fault)

    @contextlib.contextmanager
    def outage(
        self, *, status: int = 503, starting_with: Matcher | None = None
    ) -> Iterator[Outage]:
        """Refuse every request while inside the block, from the first one that matches
        `starting_with` on (by default at once)."""
        started = starting_with is None

        def refuses(request: StoreRequest) -> bool:
            nonlocal started
            started = started or bool(starting_with and starting_with(request))
            return started

        fault = Fault(refuses, status=status, times=None)
        self._add(fault)
        try:
            yield Outage(fault)
        finally:
            self.remove(fault)

    def remove(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def release_all(self) -> None:
        """Drop every fault, letting held requests go on (when the front stops)."""
        with self._lock:
            faults, self._faults = self._faults, []
        for fault in faults:
            if fault.gate is not None:
                fault.gate.set()

    def take(self, request: StoreRequest) -> Fault | None:
        """The fault this request meets, counted, if any."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    with fault.arrived:
                        fault.seen.append(request)
                        fault.arrived.notify_all()
                    return fault
        return None

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

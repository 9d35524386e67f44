"""What a test or the sandbox makes the emulated service do wrong: errors and delays for
matching requests, a rate limit, and fates for CVMs by name (stuck, or failing)."""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from emulators.phala.behaviour import RateLimit
from emulators.phala.errors import ApiError


@dataclass
class ErrorFault:
    method: str | None
    path_pattern: re.Pattern[str]
    status: int
    detail: Any
    headers: dict[str, str]
    remaining: int | None  # None: forever


@dataclass
class DelayFault:
    method: str | None
    path_pattern: re.Pattern[str]
    seconds: float
    remaining: int | None


@dataclass
class CvmFate:
    """A chosen outcome for a CVM's operations, by name: held where it is, or ending in a
    failure status."""

    stuck: bool = False
    failure_status: str | None = None
    boot_error: str | None = None


class FaultBook:
    """Injected faults, consumed as matching requests arrive. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: list[ErrorFault] = []
        self._delays: list[DelayFault] = []
        self.fates: dict[str, CvmFate] = {}

    def add_error(
        self,
        method: str | None,
        path_regex: str,
        status: int,
        detail: Any,
        headers: dict[str, str],
        times: int | None,
    ) -> None:
        fault = ErrorFault(method, re.compile(path_regex), status, detail, headers, times)
        with self._lock:
            self._errors.append(fault)

    def add_delay(
        self, method: str | None, path_regex: str, seconds: float, times: int | None
    ) -> None:
        with self._lock:
            self._delays.append(DelayFault(method, re.compile(path_regex), seconds, times))

    def take_delay(self, method: str, path: str) -> float:
        with self._lock:
            for fault in self._delays:
                if _matches(fault, method, path):
                    _consume(self._delays, fault)
                    return fault.seconds
        return 0.0

    def take_error(self, method: str, path: str) -> ApiError | None:
        with self._lock:
            for fault in self._errors:
                if _matches(fault, method, path):
                    _consume(self._errors, fault)
                    return ApiError(fault.status, fault.detail, fault.headers)
        return None

    def clear(self) -> None:
        with self._lock:
            self._errors.clear()
            self._delays.clear()
            self.fates.clear()


class RateLimiter:
    """At most `limit.requests` calls in any `limit.seconds`; None for no limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: deque[float] = deque()

    def take(self, limit: RateLimit | None) -> int | None:
        """None when the call may proceed, else whole seconds until a slot frees."""
        if limit is None:
            return None
        with self._lock:
            now = time.monotonic()
            while self._recent and self._recent[0] <= now - limit.seconds:
                self._recent.popleft()
            if len(self._recent) >= limit.requests:
                return max(1, math.ceil(self._recent[0] + limit.seconds - now))
            self._recent.append(now)
            return None


def _matches(fault: ErrorFault | DelayFault, method: str, path: str) -> bool:
    return (fault.method is None or fault.method == method) and bool(
        fault.path_pattern.search(path)
    )


def _consume(faults: list[Any], fault: ErrorFault | DelayFault) -> None:
    if fault.remaining is not None:
        fault.remaining -= 1
        if fault.remaining <= 0:
            faults.remove(fault)

"""The driver's two ways to stop early: a failure the operator can act on, or a signal."""

from __future__ import annotations


class DriverError(Exception):
    """A failure the operator can act on; printed as one line, without a traceback."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM: unwind so every temporary file is removed."""

"""Day-2 operator CLI for openclaw-phala deployments, run as ``python -m ops``.

Every failure the CLI expects is raised as an :class:`OpsError` subclass whose
message is one line, safe to print (it never carries a secret), and whose class
decides the exit status, so ``__main__`` can turn any of them into one line on
stderr without a traceback.
"""

from __future__ import annotations


class OpsError(Exception):
    """A failure the operator can act on; ``str(error)`` is the whole message."""

    exit_code: int = 1


class ConfigError(OpsError):
    """Bad usage or configuration: wrong arguments, stack outputs, master key."""

    exit_code = 2


class OperationError(OpsError):
    """The operation itself failed: mux refused, S3 unreachable, wrong key..."""

    exit_code = 1

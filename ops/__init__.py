"""Day-2 operator CLI for openclaw-phala deployments, run as ``python -m ops``.

Every failure the CLI expects is raised as an :class:`OpsError` subclass whose
message is one line, safe to print (it never carries a secret), and whose class
decides the exit status, so ``__main__`` can turn any of them into one line on
stderr without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class OpsError(Exception):
    """A failure the operator can act on; ``str(error)`` is the whole message."""

    exit_code: int = 1


class ConfigError(OpsError):
    """Bad usage or configuration: wrong arguments, stack outputs, master key."""

    exit_code = 2


class OperationError(OpsError):
    """The operation itself failed: mux refused, S3 unreachable, wrong key..."""

    exit_code = 1


def read_utf8_file(path: Path, what: str, error: type[OpsError] = ConfigError) -> str:
    """A text file's content, or `error` with one line naming `what` went wrong."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as failure:
        raise error(f"cannot read {what} {str(path)!r}: {failure.strerror or failure}") from None
    except UnicodeDecodeError:
        raise error(f"{what} {str(path)!r} is not UTF-8 text") from None

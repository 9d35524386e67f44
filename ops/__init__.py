"""Day-2 operator CLI for openclaw-phala deployments, run as ``python -m ops``.

Every failure the CLI expects is raised as an :class:`OpsError` subclass whose
message is one line, safe to print (it never carries a secret), and whose class
decides the exit status, so ``__main__`` can turn any of them into one line on
stderr without a traceback.
"""

from __future__ import annotations

import os
import stat
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


def read_utf8_file(
    path: Path,
    what: str,
    error: type[OpsError] = ConfigError,
    *,
    max_bytes: int,
    private: bool = False,
) -> str:
    """A text file's content, checked in this order before any of it is read: a regular
    file (not /dev/zero, a FIFO or a terminal), at most `max_bytes` long, and, when
    `private`, readable by its owner only. Any failure is `error` with one line naming
    `what`."""
    shown = repr(str(path))
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before it can be refused.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as failure:
        raise error(f"cannot read {what} {shown}: {failure.strerror or failure}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {shown} is not a regular file")
        if info.st_size > max_bytes:
            raise error(f"{what} {shown} is {info.st_size} bytes; at most {max_bytes}")
        if private and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise error(
                f"{what} {shown} is accessible by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); chmod 600 it first"
            )
        chunks: list[bytes] = []
        remaining = max_bytes + 1  # a file that grows after fstat is still bounded
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as failure:
        raise error(f"cannot read {what} {shown}: {failure.strerror or failure}") from None
    finally:
        os.close(descriptor)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise error(f"{what} {shown} is more than {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} {shown} is not UTF-8 text") from None

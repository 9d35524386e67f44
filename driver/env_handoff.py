"""Handing the CVM env to the `phala` CLI without it ever touching the disk.

The env holds every secret of the CVM. The CLI reads an env file named by `--env` with
`existsSync` and `readFileSync` (npm phala@1.1.18, node_modules/phala/dist/index.js: the
deploy command's env reader resolves the path against its cwd, checks it exists, reads it
once as UTF-8 and parses it as dotenv), and both work on `/dev/fd/N` for a pipe the CLI
inherits. So the driver renders the env, writes it into a pipe from a thread, and names
the pipe's read end: the secrets are only ever in memory (ours, the kernel's pipe buffer,
the CLI's), so nothing is left behind even when the driver is killed with SIGKILL.

The private work directory still exists for what is not secret (the compose file, the
SSH public key, an empty HOME for the CLI); a killed driver's directory is swept by the
next run.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from driver.errors import DriverError


class EnvFileError(DriverError):
    pass


def dotenv_line(key: str, value: str) -> str:
    """One line the phala CLI's dotenv parser reads back byte-exact.

    In that parser single quotes and backticks are fully literal (newlines included);
    double quotes turn the two characters backslash-n into a newline; unquoted values stop
    at '#' and are trimmed. So: the first literal quoting style the value does not contain,
    else double quotes when that is exact. The parser first turns every carriage return in
    the text into a newline, so a CR survives only as the backslash-r escape inside double
    quotes.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise EnvFileError(f"invalid env var name {key!r}")
    if "\r" not in value:
        for quote in ("'", "`"):
            if quote not in value:
                return f"{key}={quote}{value}{quote}"
    if '"' not in value and "\\n" not in value and "\\r" not in value:
        escaped_carriage_returns = value.replace("\r", "\\r")
        return f'{key}="{escaped_carriage_returns}"'
    raise EnvFileError(
        f"the value of {key} cannot be written exactly to the phala CLI's env file: it "
        "contains both ' and ` (or a carriage return), and also \" or a literal "
        "backslash-n or backslash-r"
    )


def render_env_file(env: Mapping[str, str]) -> str:
    return "".join(dotenv_line(key, value) + "\n" for key, value in env.items())


class EnvPipe:
    """The rendered env, offered to one child process as `/dev/fd/N`.

    Use: enter, pass `fd` to the child (`pass_fds`), call `started()` once the child runs
    (the parent's copy of the read end is closed then, so a child that exits without
    reading ends the writer with EPIPE instead of blocking it), and exit."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._data = render_env_file(env).encode("utf-8")
        self._read_fd = -1
        self._write_fd = -1
        self._writer: threading.Thread | None = None

    def __enter__(self) -> EnvPipe:
        self._read_fd, self._write_fd = os.pipe()
        return self

    @property
    def fd(self) -> int:
        return self._read_fd

    @property
    def path(self) -> str:
        """What the child opens: its inherited read end keeps the same number."""
        return f"/dev/fd/{self._read_fd}"

    def started(self) -> None:
        os.close(self._read_fd)
        self._read_fd = -1
        write_fd, self._write_fd = self._write_fd, -1
        self._writer = threading.Thread(
            target=_write_all, args=(write_fd, self._data), name="env-pipe", daemon=True
        )
        self._writer.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for fd in (self._read_fd, self._write_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._read_fd = self._write_fd = -1
        if self._writer is not None:
            # The child has exited by now, so the writer has finished or gets EPIPE.
            self._writer.join(timeout=5)


def _write_all(fd: int, data: bytes) -> None:
    try:
        with os.fdopen(fd, "wb", buffering=0) as pipe:
            view = memoryview(data)
            while view:
                view = view[pipe.write(view) or 0 :]
    except (BrokenPipeError, OSError):
        pass  # the child exited without reading all of it; it reports its own failure


# --------------------------------------------------------------------------- workdir

WORKDIR_PREFIX = "openclaw-phala-"
_WORKDIR_NAME = re.compile(re.escape(WORKDIR_PREFIX) + r"(\d+)-")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to judge
    return True


def sweep_orphaned_workdirs(temp_root: Path) -> list[Path]:
    """Remove the workdirs of drivers that were killed (SIGKILL leaves no chance to clean
    up). A workdir is orphaned when it is ours and the process named in it is gone; a
    reused pid only delays the sweep to a later run."""
    swept = []
    for path in temp_root.glob(f"{WORKDIR_PREFIX}*"):
        match = _WORKDIR_NAME.match(path.name)
        if match is None or not path.is_dir() or path.stat().st_uid != os.getuid():
            continue
        if int(match.group(1)) != os.getpid() and not _process_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            swept.append(path)
    return swept


@contextmanager
def private_workdir() -> Iterator[Path]:
    """A 0700 temp dir for the compose file, the SSH public key and the CLI's empty HOME;
    removed on every exit. Its name carries this process's pid, so a later run can sweep
    it if this one is killed outright."""
    sweep_orphaned_workdirs(Path(tempfile.gettempdir()))
    path = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
    try:
        path.chmod(0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_private(path: Path, text: str) -> Path:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path

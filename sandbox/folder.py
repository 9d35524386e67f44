"""The sandbox's one private folder: state, secrets and logs, in memory.

Where: `$OPENCLAW_SANDBOX_DIR`, else `$XDG_RUNTIME_DIR/openclaw-phala-sandbox`, else
`/dev/shm/openclaw-phala-sandbox-<uid>`. The folder must be on a memory-backed file system
(tmpfs or ramfs), checked in /proc/self/mountinfo: the running gateway's config and device
key, the engine's passphrase and the Pulumi state all live there, and so never rest on disk
(unless the system swaps) and are gone at the latest when the machine stops. The folder is
made with mode 0700 and its files with 0600; `down` removes it.

One command at a time works on it: each holds an exclusive lock (`flock`) on `lock` inside.
`sandbox.json` records what runs (each process with its start time, see processes.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SANDBOX_DIR_VAR = "OPENCLAW_SANDBOX_DIR"
MEMORY_FILE_SYSTEMS = frozenset({"tmpfs", "ramfs"})


class FolderError(RuntimeError):
    """The folder cannot be used; the message says why and what to set."""


def default_location(environ: Mapping[str, str]) -> Path:
    explicit = environ.get(SANDBOX_DIR_VAR, "").strip()
    if explicit:
        return Path(explicit).expanduser().absolute()
    runtime = environ.get("XDG_RUNTIME_DIR", "").strip()
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "openclaw-phala-sandbox"
    # A name others could take first: `check_own` refuses a folder that is not ours.
    # A name another user could take first: `exists` refuses a folder not ours alone.
    return Path("/dev/shm") / f"openclaw-phala-sandbox-{os.getuid()}"  # noqa: S108


def _unescape_mount_path(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash as a backslash and 3 octal digits."""
    return re.sub(r"\\([0-7]{3})", lambda found: chr(int(found.group(1), 8)), text)


def mount_type(resolved: str, mountinfo: str) -> str | None:
    """The type of the file system mounted deepest above the absolute path `resolved`."""
    best, best_type = "", None
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        mount_point = _unescape_mount_path(fields[4])
        fs_type = line.split(" - ", 1)[1].split()[0]
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):  # a later mount over the same point wins
            best, best_type = mount_point, fs_type
    return best_type


def file_system_type(path: Path, mountinfo: str | None = None) -> str | None:
    """The type of the file system `path` (or its nearest existing parent) is on."""
    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    return mount_type(str(target.resolve()), mountinfo)


def check_memory_backed(path: Path, mountinfo: str | None = None) -> None:
    fs_type = file_system_type(path, mountinfo)
    if fs_type not in MEMORY_FILE_SYSTEMS:
        raise FolderError(
            f"{path} is on {fs_type or 'an unknown file system'}, not in memory: the sandbox "
            f"keeps its secrets (the engine's passphrase, the gateway's config and key) in a "
            f"memory-backed folder only. Set {SANDBOX_DIR_VAR} to a folder on tmpfs (such as "
            "/dev/shm/<name>)"  # noqa: S108
        )


def write_private(path: Path, text: str) -> None:
    """A new file readable by its owner only, created with that mode (never wider)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)


@dataclass(frozen=True)
class SandboxFolder:
    root: Path

    # ----- layout ----------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.root / "sandbox.json"

    @property
    def passphrase_file(self) -> Path:
        return self.root / "passphrase"

    @property
    def workspace(self) -> Path:
        return self.root / "engine"

    @property
    def toolchain(self) -> Path:
        return self.root / "toolchain"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def gateway_root(self) -> Path:
        return self.root / "gateway"

    def request_log(self, service: str) -> Path:
        return self.logs / f"{service}-requests.jsonl"

    def service_log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    # ----- life ------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the folder is there; one that is not ours alone is refused."""
        try:
            found = self.root.lstat()
        except FileNotFoundError:
            return False
        if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
            raise FolderError(f"{self.root} is not a folder of this user: not touching it")
        if stat.S_IMODE(found.st_mode) & 0o077:
            raise FolderError(
                f"{self.root} is open to other users (mode {stat.S_IMODE(found.st_mode):o})"
            )
        return True

    def create(self) -> None:
        """The folder and its first files; the parent must exist (and the folder not)."""
        check_memory_backed(self.root.parent)
        self.root.mkdir(mode=0o700)
        self.root.chmod(0o700)  # whatever the umask
        self.logs.mkdir(mode=0o700)
        # The engine's passphrase: random, in this folder only, handed to the engine by
        # PULUMI_CONFIG_PASSPHRASE_FILE; never in argv or the environment of anything else.
        write_private(self.passphrase_file, secrets.token_urlsafe(32))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the folder for one command."""
        descriptor = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    # ----- the record of what runs -----------------------------------------------------

    def read_state(self) -> dict[str, Any]:
        if not self.state_file.exists():
            return {}
        loaded = json.loads(self.state_file.read_text(encoding="utf-8"))
        return loaded if isinstance(loaded, dict) else {}

    def write_state(self, state: Mapping[str, Any]) -> None:
        partial = self.root / "sandbox.json.partial"
        partial.unlink(missing_ok=True)
        write_private(partial, json.dumps(state, indent=2, sort_keys=True))
        partial.replace(self.state_file)

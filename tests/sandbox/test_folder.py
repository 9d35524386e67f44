"""The sandbox's one private folder: memory-backed (tmpfs or ramfs, read from mountinfo),
made 0700 with a 0600 passphrase, and never taken over when it is not its user's alone."""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.folder import (
    SANDBOX_DIR_VAR,
    FolderError,
    SandboxFolder,
    check_memory_backed,
    default_location,
    file_system_type,
    mount_type,
)

MOUNTINFO = """\
22 1 253:1 / / rw,relatime - ext4 /dev/vda rw
25 22 0:21 / /dev/shm rw,nosuid,nodev - tmpfs tmpfs rw
26 22 0:22 / /mnt/with\\040space rw - ramfs ramfs rw
27 22 0:23 / /mnt rw - ext4 /dev/vdb rw
"""


@pytest.fixture
def memory_root() -> Iterator[Path]:
    root = Path("/dev/shm") / f"pytest-folder-{secrets.token_hex(4)}"
    root.mkdir(mode=0o700)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_file_system_is_the_one_of_the_deepest_mount_point() -> None:
    assert mount_type("/dev/shm/sandbox", MOUNTINFO) == "tmpfs"
    assert mount_type("/mnt/with space/x", MOUNTINFO) == "ramfs"
    assert mount_type("/mnt/other", MOUNTINFO) == "ext4"
    assert mount_type("/dev/shmother", MOUNTINFO) == "ext4"


def test_a_folder_on_disk_is_refused_naming_the_setting() -> None:
    with pytest.raises(FolderError, match=SANDBOX_DIR_VAR):
        check_memory_backed(Path("/var/lib/sandbox"), MOUNTINFO)
    check_memory_backed(Path("/dev/shm/sandbox"), MOUNTINFO)


def test_this_machines_shared_memory_is_found_in_memory() -> None:
    assert file_system_type(Path("/dev/shm")) in ("tmpfs", "ramfs")


def test_the_default_location_is_in_memory_and_the_setting_wins() -> None:
    assert default_location({SANDBOX_DIR_VAR: "/dev/shm/mine"}) == Path("/dev/shm/mine")
    default = default_location({})
    assert default.name == f"openclaw-phala-sandbox-{os.getuid()}"
    check_memory_backed(default)


def test_the_folder_is_private_and_holds_a_private_passphrase(memory_root: Path) -> None:
    folder = SandboxFolder(memory_root / "sandbox")
    assert not folder.exists()
    folder.create()
    assert folder.exists()
    assert stat.S_IMODE(folder.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.passphrase_file.stat().st_mode) == 0o600
    assert len(folder.passphrase_file.read_text()) >= 40
    folder.write_state({"services": {}})
    assert folder.read_state() == {"services": {}}
    assert stat.S_IMODE(folder.state_file.stat().st_mode) == 0o600


def test_a_folder_open_to_others_is_not_taken_over(memory_root: Path) -> None:
    opened = memory_root / "opened"
    opened.mkdir()
    opened.chmod(0o755)
    with pytest.raises(FolderError, match="open to other users"):
        SandboxFolder(opened).exists()
    linked = memory_root / "linked"
    linked.symlink_to(opened)
    with pytest.raises(FolderError, match="not a folder of this user"):
        SandboxFolder(linked).exists()

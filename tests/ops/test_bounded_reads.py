"""`ops` bounds every file it reads (size, then mode, then content) and treats every value
of an outputs file as data (issue 24, item 8)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ops import ConfigError, read_utf8_file
from ops.backup import read_master_key
from ops.stack_outputs import StackOutputsError, load_stack_outputs_file
from tests.ops.ops_process import run_ops
from tests.ops.outputs_document import make_outputs

MASTER_KEY = "m" * 44


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o620, 0o602, 0o644, 0o700 | 0o040])
def test_a_master_key_file_group_or_others_can_reach_is_refused(tmp_path: Path, mode: int) -> None:
    # 0640 must be refused too: no test failed if the check ignored the group bits.
    key_file = tmp_path / "master.key"
    key_file.write_text(MASTER_KEY)
    key_file.chmod(mode)
    with pytest.raises(ConfigError, match=rf"accessible by group or others \(mode {mode:04o}\)"):
        read_master_key(key_file, {})


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_master_key_file_only_its_owner_reads_is_used(tmp_path: Path, mode: int) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(MASTER_KEY + "\n")
    key_file.chmod(mode)
    assert read_master_key(key_file, {}) == MASTER_KEY


def test_size_is_checked_before_mode_and_mode_before_content(tmp_path: Path) -> None:
    big = tmp_path / "big.key"
    big.write_bytes(b"k" * 100_000)
    big.chmod(0o644)
    with pytest.raises(ConfigError, match=r"is 100000 bytes; at most 16386"):
        read_master_key(big, {})
    unreadable = tmp_path / "binary.key"
    unreadable.write_bytes(b"\xff\xfe not text")
    unreadable.chmod(0o640)
    with pytest.raises(ConfigError, match=r"accessible by group or others"):
        read_master_key(unreadable, {})
    unreadable.chmod(0o600)
    with pytest.raises(ConfigError, match=r"is not UTF-8 text"):
        read_master_key(unreadable, {})


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_a_device_is_refused_before_anything_is_read(special: str) -> None:
    # Before: `ops status --outputs /dev/zero` grew to about 23 GB and was killed.
    with pytest.raises(StackOutputsError, match="is not a regular file"):
        load_stack_outputs_file(Path(special))
    with pytest.raises(ConfigError, match="is not a regular file"):
        read_master_key(Path(special), {})


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "outputs.json"
    os.mkfifo(fifo)
    with pytest.raises(StackOutputsError, match="is not a regular file"):
        load_stack_outputs_file(fifo)


def test_an_oversized_outputs_file_is_refused_with_the_limit(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    with outputs.open("wb") as handle:
        handle.truncate(33 * 1024 * 1024)  # sparse: no 33 MB written
    with pytest.raises(StackOutputsError, match=r"at most 33554432"):
        load_stack_outputs_file(outputs)


def test_read_utf8_file_never_reads_past_its_bound(tmp_path: Path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("abc")
    assert read_utf8_file(text, "file", max_bytes=3) == "abc"
    with pytest.raises(ConfigError, match="is 3 bytes; at most 2"):
        read_utf8_file(text, "file", max_bytes=2)


def test_ops_status_of_dev_zero_is_one_line_exit_2() -> None:
    result = run_ops("status", "--outputs", "/dev/zero", env={"PHALA_CLOUD_API_KEY": "k"})
    assert result.returncode == 2
    assert result.stderr == "error: stack outputs file '/dev/zero' is not a regular file\n"


@pytest.mark.parametrize(
    ("field", "value", "wanted"),
    [
        ("cvmId", "--help", "a CVM id"),
        ("cvmId", "x; rm -rf /", "a CVM id"),
        ("appId", "-x", "an app id"),
        ("sshHost", "x;touch /tmp/pwned", "a host name"),
        ("sshHost", "-oProxyCommand=sh", "a host name"),
        ("sshHost", "$(id).example.com", "a host name"),
        ("gatewayBaseDomain", "a b", "a host name"),
    ],
)
def test_a_value_from_an_outputs_file_is_data_never_an_option_or_shell(
    tmp_path: Path, field: str, value: str, wanted: str
) -> None:
    # Before: a cvmId of `--help` reached the phala CLI as an option ("exit 1, no message").
    document = make_outputs()
    document["tenants"]["alice"][field] = value
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(document))
    environment = {
        "PATH": os.environ["PATH"],
        "PHALA_CLOUD_API_KEY": "k",
        "HOME": str(tmp_path),
        "OPENCLAW_PHALA_CLI": "/nonexistent/phala",  # never reached
    }
    for command in (["logs", "alice"], ["ssh", "alice"], ["status"]):
        result = run_ops(*command, "--outputs", str(outputs), env=environment)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.startswith(
            f"error: stack output 'tenants.alice.{field}' must be {wanted}"
        ), result.stderr
        assert f"got {value!r}" in result.stderr and result.stderr.count("\n") == 1

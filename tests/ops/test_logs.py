"""`ops logs` end to end: the real pinned `phala` CLI against the Phala API emulator,
which serves the composition and the guest agent's log endpoint the CLI calls."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.phala import PhalaCloudEmulator
from tests.ops.ops_process import run_ops, start_ops
from tests.ops.outputs_document import make_outputs, write_outputs
from tests.support.emulator_seed import seed_cvm
from tests.support.process_groups import stop_group

OPENCLAW_COMPOSE = (
    "services:\n  openclaw:\n    image: nginx@sha256:" + "a" * 64 + "\n"
    "    container_name: openclaw\n"
)
MUX_COMPOSE = (
    "services:\n  mux-server:\n    image: nginx@sha256:" + "b" * 64 + "\n"
    "    container_name: mux-server\n"
)


@pytest.fixture
def emulator() -> Iterator[PhalaCloudEmulator]:
    with PhalaCloudEmulator(provision_seconds=0, update_seconds=0) as running:
        yield running


@pytest.fixture
def deployed(emulator: PhalaCloudEmulator, tmp_path: Path) -> tuple[Path, str, str]:
    """Outputs whose alice and mux point at CVMs in the emulator: (file, alice id, mux id)."""
    document = make_outputs()
    alice = seed_cvm(emulator, "alice-cvm", OPENCLAW_COMPOSE)
    mux = seed_cvm(emulator, "shared-mux", MUX_COMPOSE)
    document["tenants"]["alice"]["cvmId"] = alice.vm_uuid
    document["mux"]["cvmId"] = mux.vm_uuid
    return write_outputs(tmp_path / "outputs.json", document), alice.vm_uuid, mux.vm_uuid


def ops_env(emulator: PhalaCloudEmulator, tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHALA_")}
    return environ | {
        "PHALA_CLOUD_API_PREFIX": emulator.api_prefix,
        "PHALA_CLOUD_API_KEY": emulator.api_key,
        "PHALA_CLOUD_DIR": str(tmp_path / "phala-cloud"),
        "HOME": str(tmp_path),
    }


def run_logs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_ops("logs", *args, env=env)


def test_logs_prints_the_tail_of_the_tenants_openclaw_container_by_cvm_id(
    emulator: PhalaCloudEmulator, deployed: tuple[Path, str, str], tmp_path: Path
) -> None:
    outputs, alice_id, _ = deployed
    for number in range(5):
        emulator.append_container_log(alice_id, "openclaw", f"gateway line {number}\n")
    result = run_logs(
        ops_env(emulator, tmp_path), "alice", "--tail", "2", "--outputs", str(outputs)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "gateway line 3\ngateway line 4\n"
    composition = emulator.requests("GET", r"/composition$")
    assert [record.path for record in composition] == [
        f"/cvms/{alice_id.replace('-', '')}/composition"  # the CLI drops UUID dashes
    ]
    fetches = emulator.requests("GET", r"^/guest-agent/")
    assert fetches[0].path.endswith("/logs/openclaw")
    assert fetches[0].query["tail"] == ["2"]


def test_logs_of_mux_reads_the_mux_server_container(
    emulator: PhalaCloudEmulator, deployed: tuple[Path, str, str], tmp_path: Path
) -> None:
    outputs, _, mux_id = deployed
    emulator.append_container_log(mux_id, "mux-server", '{"event":"instance_registered"}\n')
    result = run_logs(ops_env(emulator, tmp_path), "mux", "--outputs", str(outputs))
    assert result.returncode == 0, result.stderr
    assert result.stdout == '{"event":"instance_registered"}\n'


def test_logs_stderr_channel_goes_to_stderr_only_when_asked(
    emulator: PhalaCloudEmulator, deployed: tuple[Path, str, str], tmp_path: Path
) -> None:
    outputs, alice_id, _ = deployed
    emulator.append_container_log(alice_id, "openclaw", "to stdout\n")
    emulator.append_container_log(alice_id, "openclaw", "to stderr\n", channel="stderr")
    env = ops_env(emulator, tmp_path)
    without = run_logs(env, "alice", "--outputs", str(outputs))
    assert (without.returncode, without.stdout) == (0, "to stdout\n")
    assert "to stderr" not in without.stderr
    with_stderr = run_logs(env, "alice", "--stderr", "--outputs", str(outputs))
    assert (with_stderr.returncode, with_stderr.stdout) == (0, "to stdout\n")
    assert "to stderr\n" in with_stderr.stderr


def test_logs_follow_streams_new_lines_until_interrupted(
    emulator: PhalaCloudEmulator, deployed: tuple[Path, str, str], tmp_path: Path
) -> None:
    outputs, alice_id, _ = deployed
    emulator.append_container_log(alice_id, "openclaw", "before follow\n")
    process = start_ops(
        "logs", "alice", "--follow", "--outputs", str(outputs), env=ops_env(emulator, tmp_path)
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "before follow\n"
        emulator.append_container_log(alice_id, "openclaw", "while following\n")
        assert process.stdout.readline() == "while following\n"
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C at the terminal
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
    finally:
        stop_group(process)


def test_logs_of_a_cvm_phala_no_longer_has_is_one_line_and_exit_1(
    emulator: PhalaCloudEmulator, deployed: tuple[Path, str, str], tmp_path: Path
) -> None:
    outputs, alice_id, _ = deployed
    emulator.delete_behind_back(alice_id)
    result = run_logs(ops_env(emulator, tmp_path), "alice", "--outputs", str(outputs))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: phala logs for tenant 'alice' (CVM {alice_id}): ")
    assert "404" in lines[0] or "not found" in lines[0].lower()


def test_logs_without_an_api_key_is_a_config_error_before_calling_phala(
    emulator: PhalaCloudEmulator, deployed: tuple[Path, str, str], tmp_path: Path
) -> None:
    outputs, _, _ = deployed
    env = ops_env(emulator, tmp_path)
    del env["PHALA_CLOUD_API_KEY"]
    result = run_logs(env, "alice", "--outputs", str(outputs))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: no Phala Cloud API key: export PHALA_CLOUD_API_KEY=<key>, or run `npx phala login`"
    ]
    assert emulator.request_log == []


def test_logs_never_puts_the_api_key_on_the_command_line(
    emulator: PhalaCloudEmulator, deployed: tuple[Path, str, str], tmp_path: Path
) -> None:
    # A stand-in CLI records its argv and environment: the key must arrive only
    # through the environment, as the deploy driver passes it.
    outputs, _, _ = deployed
    record = tmp_path / "argv.txt"
    fake_cli = tmp_path / "fake-phala"
    fake_cli.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {record}\n'
        f'printf "%s" "$PHALA_CLOUD_API_KEY" > {record}.key\n'
        "echo fake logs\n"
    )
    fake_cli.chmod(0o700)
    env = ops_env(emulator, tmp_path) | {"OPENCLAW_PHALA_CLI": str(fake_cli)}
    result = run_logs(env, "alice", "-n", "5", "--outputs", str(outputs))
    assert result.returncode == 0, result.stderr
    argv = record.read_text()
    assert emulator.api_key not in argv
    assert argv.splitlines()[:2] == ["logs", "openclaw"]
    assert Path(f"{record}.key").read_text() == emulator.api_key

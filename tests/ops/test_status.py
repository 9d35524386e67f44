"""`ops status` against the Phala API emulator: drift is reported and fails the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.phala import PhalaCloudEmulator
from ops.status import EXIT_DRIFT, EXIT_UNKNOWN, compare
from tests.ops.ops_process import REPO, run_ops
from tests.ops.outputs_document import make_outputs, write_outputs
from tests.support.emulator_seed import seed_cvm

COMPOSE = "services:\n  openclaw:\n    image: nginx@sha256:" + "a" * 64 + "\n"
MUX_COMPOSE = "services:\n  mux-server:\n    image: nginx@sha256:" + "b" * 64 + "\n"


@pytest.fixture
def emulator() -> Iterator[PhalaCloudEmulator]:
    with PhalaCloudEmulator(provision_seconds=0, update_seconds=0) as running:
        yield running


def deployed_outputs(emulator: PhalaCloudEmulator, tmp_path: Path) -> Path:
    """Outputs as the program would export them for three CVMs that exist."""
    document = make_outputs()
    for name, compose in (("alice", COMPOSE), ("carol", COMPOSE)):
        cvm = seed_cvm(emulator, name, compose)
        document["tenants"][name] |= {"cvmId": cvm.vm_uuid, "composeHash": cvm.compose_hash}
    mux = seed_cvm(emulator, "shared-mux", MUX_COMPOSE)  # CVM names need 5+ characters
    document["mux"] |= {"name": "shared-mux", "cvmId": mux.vm_uuid, "composeHash": mux.compose_hash}
    return write_outputs(tmp_path / "outputs.json", document)


def status_env(emulator: PhalaCloudEmulator, home: Path, **env: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHALA_")}
    return (
        environ
        | {
            "PHALA_CLOUD_API_PREFIX": emulator.api_prefix,
            "PHALA_CLOUD_API_KEY": emulator.api_key,
            "HOME": str(home),
        }
        | env
    )


NO_WAIT = {"Retry-After": "0"}


def run_status(emulator: PhalaCloudEmulator, outputs: Path, *extra: str, **env: str):
    environ = status_env(emulator, outputs.parent, **env)
    return run_ops("status", "--outputs", str(outputs), *extra, env=environ)


def test_status_reports_every_cvm_ok_and_exits_zero(
    emulator: PhalaCloudEmulator, tmp_path: Path
) -> None:
    result = run_status(emulator, deployed_outputs(emulator, tmp_path))
    assert result.returncode == 0, result.stderr
    assert "all 3 CVMs ok" in result.stdout
    assert emulator.api_key not in result.stdout + result.stderr


def test_status_into_a_closed_pipe_ends_with_one_line_and_no_traceback(
    emulator: PhalaCloudEmulator, tmp_path: Path
) -> None:
    outputs = deployed_outputs(emulator, tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written, as `| head -0`
    try:
        result = subprocess.run(
            [sys.executable, "-m", "ops", "status", "--outputs", str(outputs)],
            cwd=REPO,
            env=status_env(emulator, tmp_path),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert result.stderr == "error: output closed before everything was written (broken pipe)\n"
    assert result.returncode == 1


def test_a_cvm_deleted_behind_our_back_is_drift(
    emulator: PhalaCloudEmulator, tmp_path: Path
) -> None:
    outputs = deployed_outputs(emulator, tmp_path)
    emulator.delete_behind_back("carol")
    result = run_status(emulator, outputs)
    assert result.returncode == 1
    (carol,) = [line for line in result.stdout.splitlines() if " carol " in line]
    assert "missing" in carol and "DRIFT: missing" in carol
    assert "1 of 3 CVMs drifted" in result.stdout


def test_a_compose_changed_outside_pulumi_is_drift(
    emulator: PhalaCloudEmulator, tmp_path: Path
) -> None:
    outputs = deployed_outputs(emulator, tmp_path)
    emulator.change_compose_externally("alice", COMPOSE.replace("a" * 64, "f" * 64))
    result = run_status(emulator, outputs, "--json")
    assert result.returncode == 1
    by_name = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert by_name["alice"]["problems"] == ["compose changed outside Pulumi"]
    assert by_name["carol"]["drifted"] is False
    assert by_name["shared-mux"]["drifted"] is False


def test_a_stopped_mux_is_drift(emulator: PhalaCloudEmulator, tmp_path: Path) -> None:
    outputs = deployed_outputs(emulator, tmp_path)
    emulator.set_status("shared-mux", "stopped")
    result = run_status(emulator, outputs)
    assert result.returncode == 1
    assert "not running (stopped)" in result.stdout


def test_an_unreadable_cvm_is_its_own_unknown_row_and_the_table_goes_on(
    emulator: PhalaCloudEmulator, tmp_path: Path
) -> None:
    outputs = deployed_outputs(emulator, tmp_path)
    alice_id = json.loads(outputs.read_text())["tenants"]["alice"]["cvmId"].replace("-", "")
    # A failing read is retried as ever; Retry-After: 0 spares the test the backoff.
    emulator.inject_error("GET", f"^/cvms/{alice_id}", status=500, headers=NO_WAIT, times=None)
    result = run_status(emulator, outputs)
    assert result.returncode == EXIT_UNKNOWN == 3
    rows = {line.split()[1]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    assert "unknown" in rows["alice"] and "UNKNOWN: could not read it (HTTP 500" in rows["alice"]
    assert rows["carol"].endswith("ok") and rows["shared-mux"].endswith("ok")
    assert "1 of 3 CVMs unknown (could not be read)" in result.stdout
    assert "Traceback" not in result.stderr

    as_json = run_status(emulator, outputs, "--json")
    by_name = {entry["name"]: entry for entry in json.loads(as_json.stdout)}
    assert by_name["alice"]["unknown"] is True and by_name["alice"]["drifted"] is False
    assert by_name["carol"]["unknown"] is False


def test_drift_wins_over_unknown_in_the_exit_status(
    emulator: PhalaCloudEmulator, tmp_path: Path
) -> None:
    outputs = deployed_outputs(emulator, tmp_path)
    alice_id = json.loads(outputs.read_text())["tenants"]["alice"]["cvmId"].replace("-", "")
    # A failing read is retried as ever; Retry-After: 0 spares the test the backoff.
    emulator.inject_error("GET", f"^/cvms/{alice_id}", status=500, headers=NO_WAIT, times=None)
    emulator.delete_behind_back("carol")
    result = run_status(emulator, outputs)
    assert result.returncode == EXIT_DRIFT == 1
    assert "1 of 3 CVMs drifted, 1 of 3 CVMs unknown (could not be read)" in result.stdout


def test_status_without_an_api_key_says_how_to_set_one(
    emulator: PhalaCloudEmulator, tmp_path: Path
) -> None:
    result = run_status(emulator, deployed_outputs(emulator, tmp_path), PHALA_CLOUD_API_KEY="")
    assert result.returncode == 2
    assert "export PHALA_CLOUD_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_wrong_api_key_fails_clearly(emulator: PhalaCloudEmulator, tmp_path: Path) -> None:
    outputs = deployed_outputs(emulator, tmp_path)
    result = run_status(emulator, outputs, PHALA_CLOUD_API_KEY="phak_wrong_key_0123")
    assert result.returncode == 1
    assert "HTTP 401" in result.stderr
    assert "phak_wrong_key_0123" not in result.stderr
    assert "Traceback" not in result.stderr


def test_compare_names_each_kind_of_drift() -> None:
    live = {"name": "alice", "status": "running", "compose_hash": "h1"}
    assert compare("tenant", "alice", "id", "h1", live).problems == ()
    assert compare("tenant", "alice", "id", "h1", None).problems == ("missing",)
    assert compare("tenant", "alice", "id", "h2", live).problems == (
        "compose changed outside Pulumi",
    )
    renamed = compare("tenant", "alice", "id", "h1", live | {"name": "alice-old"})
    assert renamed.problems == ("renamed to 'alice-old'",)

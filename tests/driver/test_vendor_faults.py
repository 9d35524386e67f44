"""Failures of the Phala API: each fails clearly, and the next run converges."""

from __future__ import annotations

from components.compose import openclaw_compose
from emulators.phala import STATUS_RUNNING
from tests.driver.driver_sandbox import (
    OPENCLAW_IMAGE,
    OPENCLAW_IMAGE_V2,
    Sandbox,
    default_env,
    driver_inputs,
    only_cvm,
    provisions,
    recorded_stdout,
    wait_until,
)
from tests.support.emulator_seed import seed_cvm


def test_5xx_on_provision_fails_clearly_and_the_next_create_converges(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    emulator.inject_error("POST", r"^/cvms/provision$", status=503, detail="No capacity (test)")
    inputs = driver_inputs("rosa-gateway")

    failed = sandbox.run("create", inputs)
    retried = sandbox.run("create", inputs)

    assert failed.returncode == 1
    assert failed.stdout == ""
    assert "creating CVM rosa-gateway failed: No capacity (test)" in failed.stderr
    assert retried.returncode == 0, retried.stderr
    assert retried.record["cvmId"] == only_cvm(emulator, "rosa-gateway").vm_uuid


def test_5xx_on_commit_fails_clearly_and_the_next_create_converges(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    emulator.inject_error("POST", r"^/cvms$", status=500, detail="Commit exploded (test)")
    inputs = driver_inputs("sam-gateway")

    failed = sandbox.run("create", inputs)
    retried = sandbox.run("create", inputs)

    assert failed.returncode == 1
    assert (
        "creating CVM sam-gateway failed: Failed to commit CVM provision: Commit exploded (test)"
        in failed.stderr
    )
    assert retried.returncode == 0, retried.stderr
    cvm = only_cvm(emulator, "sam-gateway")
    assert emulator.decrypted_env(cvm) == dict(default_env("openclaw").values)


def test_5xx_on_patch_fails_clearly_and_the_next_update_converges(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    cvm = seed_cvm(emulator, "tina-gateway", openclaw_compose(OPENCLAW_IMAGE))
    emulator.inject_error("PATCH", r"^/cvms/", status=502, detail="Upstream gone (test)")
    new_compose = openclaw_compose(OPENCLAW_IMAGE_V2)
    inputs = driver_inputs("tina-gateway", compose=new_compose)

    failed = sandbox.run("update", inputs, recorded_stdout(cvm))
    unchanged = only_cvm(emulator, "tina-gateway")
    retried = sandbox.run("update", inputs, recorded_stdout(cvm))

    assert failed.returncode == 1
    assert "updating CVM tina-gateway failed: Upstream gone (test)" in failed.stderr
    assert unchanged.docker_compose_file == cvm.docker_compose_file
    assert retried.returncode == 0, retried.stderr
    converged = only_cvm(emulator, "tina-gateway")
    assert converged.vm_uuid == cvm.vm_uuid == retried.record["cvmId"]
    assert converged.docker_compose_file == new_compose


def test_commit_slower_than_the_cli_timeout_fails_clearly_and_the_next_create_adopts(
    sandbox: Sandbox,
) -> None:
    """The worst slow reply: the CLI gives up on `POST /cvms` (30 s) but Phala commits."""
    emulator = sandbox.emulator
    emulator.inject_delay("POST", r"^/cvms$", 31)
    inputs = driver_inputs("uma-gateway")

    failed = sandbox.run("create", inputs)
    wait_until(lambda: emulator.cvm_by_name("uma-gateway") is not None, "the late commit")
    retried = sandbox.run("create", inputs)

    assert failed.returncode == 1
    # The CLI reports its own request timeout only as "Unknown API error".
    assert "creating CVM uma-gateway failed: Failed to commit CVM provision" in failed.stderr
    assert "the CVM may exist anyway: a re-run adopts it" in failed.stderr
    assert retried.returncode == 0, retried.stderr
    assert "adopting existing CVM uma-gateway" in retried.stderr
    assert retried.record["cvmId"] == only_cvm(emulator, "uma-gateway").vm_uuid
    assert provisions(emulator) == 1


def test_cvm_stuck_starting_times_out_and_a_rerun_adopts_it(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    emulator.make_stuck("vera-gateway")
    inputs = driver_inputs("vera-gateway", wait_timeout_seconds=1)

    timed_out = sandbox.run("create", inputs)
    emulator.reset_faults()  # the platform recovers and the CVM finishes booting
    emulator.set_status("vera-gateway", STATUS_RUNNING)
    rerun = sandbox.run("create", driver_inputs("vera-gateway"))

    assert timed_out.returncode == 1
    assert "vera-gateway" in timed_out.stderr
    assert (
        "was still starting (an operation in progress) after 1s (phalaWaitTimeoutSeconds)"
        in timed_out.stderr
    )
    assert "a re-run continues" in timed_out.stderr
    assert rerun.returncode == 0, rerun.stderr
    assert "adopting existing CVM vera-gateway" in rerun.stderr
    assert rerun.record["cvmId"] == only_cvm(emulator, "vera-gateway").vm_uuid
    assert provisions(emulator) == 1


def test_cvm_in_error_status_fails_clearly_and_the_next_create_converges(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    emulator.make_failing("wade-gateway", boot_error="kernel panic (test)")
    inputs = driver_inputs("wade-gateway")

    failed = sandbox.run("create", inputs)
    emulator.reset_faults()
    retried = sandbox.run("create", inputs)

    assert failed.returncode == 1
    assert "CVM wade-gateway" in failed.stderr
    assert "is error, not running" in failed.stderr
    assert retried.returncode == 0, retried.stderr
    assert retried.record["status"] == STATUS_RUNNING
    assert provisions(emulator) == 1

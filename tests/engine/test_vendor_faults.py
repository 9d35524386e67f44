"""Vendor faults during a real `pulumi up`: each either fails clearly, naming the tenant
and the cause, or is retried and succeeds; the next `up` converges; the other tenant is
never harmed (the faulty run goes on past the failure, as `pulumi up --continue-on-error`
does). Faults come from the emulators' fault injection."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.cloudflare import CloudflareEmulator
from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiResult, PulumiWorkspace
from tests.support.engine_stacks import STACK, command_states
from tests.support.stack_configs import ACCOUNT_ID, base_config, with_secrets

FAULTY, CALM = "fault-agent", "calm-agent"
IMAGE_V2 = "h4x3rotab/openclaw-cvm@sha256:" + "f" * 64


@pytest.fixture
def cloudflare() -> Iterator[CloudflareEmulator]:
    with CloudflareEmulator(account_id=ACCOUNT_ID) as running:
        yield running


@pytest.fixture
def stack(
    engine_dir: Path,
    emulator: PhalaCloudEmulator,
    cloudflare: CloudflareEmulator,
    tmp_path: Path,
) -> Iterator[PulumiWorkspace]:
    """Two S3 tenants, configured but not deployed; health checks off."""
    workspace = PulumiWorkspace(engine_dir, tmp_path / "engine", emulator, cloudflare)
    try:
        config, secret_keys = with_secrets(
            base_config(
                tenants=[{"name": FAULTY, "storage": "s3"}, {"name": CALM, "storage": "s3"}],
                phalaVerifyHealth=False,
                phalaWaitTimeoutSeconds=30,
            )
        )
        workspace.init_stack(STACK)
        workspace.configure(STACK, config, secret_keys)
        yield workspace
    finally:
        workspace.close()


def up(workspace: PulumiWorkspace, *extra: str) -> PulumiResult:
    return workspace.run("up", "--yes", "--skip-preview", "--stack", STACK, *extra)


def up_through_the_fault(workspace: PulumiWorkspace) -> PulumiResult:
    """An up that goes on with the other tenant when one fails. Without
    --continue-on-error the engine starts no new step after the first failure, so whether
    the calm tenant got deployed would depend on how far it had come."""
    return up(workspace, "--continue-on-error")


def error_lines(result: PulumiResult) -> list[str]:
    return [line.strip() for line in result.output.splitlines() if "error:" in line]


def assert_fails_naming(result: PulumiResult, resource: str, cause: str) -> None:
    assert result.returncode != 0
    errors = error_lines(result)
    assert any(resource in line for line in result.output.splitlines() if "error" in line), errors
    assert re.search(cause, result.output, re.IGNORECASE), result.output
    assert not any(CALM in line for line in errors), f"the calm tenant was harmed: {errors}"


def assert_converged(workspace: PulumiWorkspace, emulator: PhalaCloudEmulator) -> None:
    """One running CVM per tenant, state and emulator agreeing, nothing left to do."""
    up(workspace).expect_success()
    names = [cvm.name for cvm in emulator.cvms()]
    assert sorted(names) == sorted([FAULTY, CALM]), names  # no duplicate CVM
    assert all(cvm.status == "running" for cvm in emulator.cvms())
    states = command_states(workspace, STACK)
    for name in (FAULTY, CALM):
        recorded = json.loads(states[name]["stdout"])["cvmId"]
        assert recorded == emulator.cvm_by_name(name).vm_uuid
    workspace.run("preview", "--expect-no-changes", "--stack", STACK).expect_success()


def failed_tenants(result: PulumiResult) -> list[str]:
    errors = error_lines(result)
    return [name for name in (FAULTY, CALM) if any(f"{name}-deploy" in e for e in errors)]


def test_phala_5xx_on_provision_fails_that_tenant_then_converges(
    stack: PulumiWorkspace, emulator: PhalaCloudEmulator
) -> None:
    emulator.inject_error(
        "POST", r"^/cvms/provision$", status=503, detail="provisioning is paused", times=1
    )
    first = up_through_the_fault(stack)
    assert first.returncode != 0
    # Both provision at once; the one that met the fault is named, with the cause.
    (failed,) = failed_tenants(first)
    other = CALM if failed == FAULTY else FAULTY
    assert f"creating CVM {failed} failed: provisioning is paused" in first.output
    assert emulator.cvm_by_name(other).status == "running"
    assert emulator.cvm_by_name(failed) is None
    assert_converged(stack, emulator)


def test_phala_5xx_on_update_fails_that_tenant_then_converges(
    stack: PulumiWorkspace, emulator: PhalaCloudEmulator
) -> None:
    up(stack).expect_success()
    stack.write_plain_config(STACK, {"openclawImage": IMAGE_V2})
    emulator.inject_error("PATCH", r"^/cvms/", status=500, detail="update queue broke", times=1)
    first = up_through_the_fault(stack)
    assert first.returncode != 0
    (failed,) = failed_tenants(first)
    other = CALM if failed == FAULTY else FAULTY
    assert f"updating CVM {failed} failed: update queue broke" in first.output
    assert IMAGE_V2 in emulator.cvm_by_name(other).docker_compose_file
    assert IMAGE_V2 not in emulator.cvm_by_name(failed).docker_compose_file
    assert_converged(stack, emulator)
    assert all(IMAGE_V2 in cvm.docker_compose_file for cvm in emulator.cvms())


def test_phala_cvm_stuck_in_starting_times_out_naming_the_tenant(
    stack: PulumiWorkspace, emulator: PhalaCloudEmulator
) -> None:
    emulator.make_stuck(FAULTY)
    first = up_through_the_fault(stack)
    assert_fails_naming(
        first,
        f"{FAULTY}-deploy",
        r"still starting \(an operation in progress\) after 30s \(phalaWaitTimeoutSeconds\)",
    )
    assert emulator.cvm_by_name(CALM).status == "running"
    emulator.reset_faults()
    emulator.set_status(FAULTY, "running")
    assert_converged(stack, emulator)


def test_phala_cvm_in_error_status_fails_naming_the_tenant(
    stack: PulumiWorkspace, emulator: PhalaCloudEmulator
) -> None:
    emulator.make_failing(FAULTY)
    first = up_through_the_fault(stack)
    assert_fails_naming(first, f"{FAULTY}-deploy", r"error|boot failed")
    assert emulator.cvm_by_name(CALM).status == "running"
    emulator.reset_faults()
    assert_converged(stack, emulator)


def test_cloudflare_5xx_and_429_are_retried_and_the_up_succeeds(
    stack: PulumiWorkspace, emulator: PhalaCloudEmulator, cloudflare: CloudflareEmulator
) -> None:
    cloudflare.inject_error("POST", r"/tokens$", 502, times=2)
    cloudflare.inject_error("POST", r"/r2/buckets$", 429, times=3, retry_after=1)
    up(stack).expect_success()
    statuses = [r.status for r in cloudflare.request_log if r.method == "POST"]
    assert statuses.count(502) == 2 and statuses.count(429) == 3
    assert len(cloudflare.buckets()) == 2 and len(cloudflare.tokens()) == 2
    assert_converged(stack, emulator)


def test_cloudflare_bucket_name_taken_fails_naming_the_bucket_then_a_new_name_converges(
    stack: PulumiWorkspace, emulator: PhalaCloudEmulator, cloudflare: CloudflareEmulator
) -> None:
    cloudflare.take_bucket_name(f"openclaw-{FAULTY}")
    first = up_through_the_fault(stack)
    assert_fails_naming(first, f"{FAULTY}-storage-bucket", r"already exists")
    assert emulator.cvm_by_name(FAULTY) is None, "no CVM without its storage"
    assert emulator.cvm_by_name(CALM).status == "running"

    stack.write_plain_config(
        STACK,
        {
            "tenants": [
                {"name": FAULTY, "storage": "s3", "bucket": f"openclaw-{FAULTY}-2"},
                {"name": CALM, "storage": "s3"},
            ]
        },
    )
    assert_converged(stack, emulator)
    assert ("default", f"openclaw-{FAULTY}-2") in cloudflare.buckets()

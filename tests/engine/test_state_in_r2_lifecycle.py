"""Two stacks joined by `muxStack` through their whole life with the state in R2, as
the README's "Working as a team" sets it up (Pulumi's S3 backend against a private
bucket behind the R2 front, tests/support/r2_state.py: HTTPS, path-style, region
`auto`, S3 credentials derived from the bucket's R2 token), shared by two operators.

Alice takes the stacks through the steps of tests/support/backend_lifecycle.py, in
file order: create, a no-op `up` of each stack with no vendor write, a change, the
MASTER_KEY guard, drift repair; after each, the checkpoints parse, no lock is left and
the front accepted every request. The same steps on a `file://` backend are covered
by the other engine tests; benchmarks/state_backends.py times both side by side.

Then Bob joins with a workspace of his own (his own `PULUMI_HOME`, home folder and
checkout; the stack files reach him as git would carry them) on the same bucket:
- while Alice's `up` of the mux stack is in flight (the front holds one of its
  checkpoint writes, so the update stays in progress as long as the test needs, with
  no sleep), Bob's `up` of the mux stack ends on the engine's lock message while
  Alice's still runs, changing nothing in either vendor or the bucket, and Bob's `up`
  of the tenants stack reads the busy mux stack's outputs and succeeds, writing nothing;
- when Alice's `up` is SIGKILLed with a checkpoint write cut off, the bucket still holds
  a whole checkpoint and her lock, and Bob recovers with the README's commands
  (tests/support/readme_recovery.py): `pulumi cancel` removes the lock, and the stack
  converges.
Last, both stacks are destroyed. The wall time of each step is printed at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import backend_lifecycle
from tests.support.backend_lifecycle import MUX, Lifecycle, lifecycle_on
from tests.support.engine_harness import PulumiWorkspace, kill_group
from tests.support.engine_stacks import print_past_capture, write_requests
from tests.support.joined_stacks import MUX_STACK, TENANTS_STACK, share_stack_files
from tests.support.moto_server import MotoServer
from tests.support.r2_state import R2StateBucket, checkpoint_key
from tests.support.readme_recovery import recover_as_documented
from tests.support.store_faults import Matcher, StoreRequest

STEP_NAMES = {function.__name__: name for name, function in backend_lifecycle.STEPS}
MUX_IMAGE_V2 = "h4x3rotab/openclaw-mux@sha256:" + "2" * 64
MUX_IMAGE_V3 = "h4x3rotab/openclaw-mux@sha256:" + "3" * 64
LOCKED = "the stack is currently locked by 1 lock(s)"
TIMED_STEPS = {
    "test_06_bob_is_locked_out_of_the_mux_alice_updates_and_still_reads_it": (
        "Bob locked out of the busy mux, reads it"
    ),
    "test_07_a_sigkilled_up_leaves_its_lock_and_a_whole_checkpoint_and_the_readme_recovers": (
        "SIGKILLed up, README recovery by Bob"
    ),
}
Step = Callable[[Callable[[Lifecycle], None]], None]


@pytest.fixture(scope="module")
def step_times(request: pytest.FixtureRequest) -> Iterator[list[tuple[str, float]]]:
    timings: list[tuple[str, float]] = []
    yield timings
    if timings:
        lines = ["", "two joined stacks with the state in R2 (wall time per step):"]
        lines += [f"  {step:<58} {seconds:6.1f} s" for step, seconds in timings]
        lines.append(f"  {'total':<58} {sum(s for _, s in timings):6.1f} s")
        print_past_capture(request, lines)


@pytest.fixture(scope="module")
def cycle(
    engine_dir: Path, moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lifecycle]:
    with lifecycle_on("r2", engine_dir, tmp_path_factory.mktemp("r2-cycle"), moto_server) as on:
        yield on


@pytest.fixture(scope="module")
def bob(
    cycle: Lifecycle, engine_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PulumiWorkspace]:
    assert cycle.r2 is not None
    workspace = PulumiWorkspace(
        engine_dir,
        tmp_path_factory.mktemp("bob"),
        cycle.phala,
        cycle.cloudflare,
        backend_url=cycle.r2.login_url,
        extra_env=cycle.r2.credentials_env(),
    )
    try:
        share_stack_files(cycle.workspace, workspace)
        yield workspace
    finally:
        workspace.close()


@pytest.fixture(scope="module")
def r2(cycle: Lifecycle) -> R2StateBucket:
    assert cycle.r2 is not None
    return cycle.r2


@pytest.fixture
def timed(step_times: list[tuple[str, float]], request: pytest.FixtureRequest) -> Iterator[None]:
    started = time.monotonic()
    yield
    step_times.append((TIMED_STEPS[request.node.name], time.monotonic() - started))


@pytest.fixture
def run_step(cycle: Lifecycle, step_times: list[tuple[str, float]]) -> Step:
    def run(step: Callable[[Lifecycle], None]) -> None:
        started = time.monotonic()
        step(cycle)
        step_times.append((STEP_NAMES[step.__name__], time.monotonic() - started))

    return run


def test_01_both_stacks_are_created_and_the_tenants_join_the_mux(run_step: Step) -> None:
    run_step(backend_lifecycle.create)


def test_02_a_no_op_up_of_each_stack_writes_to_no_vendor(run_step: Step) -> None:
    run_step(backend_lifecycle.no_op)


def test_03_a_new_image_digest_updates_the_tenants_in_place(run_step: Step) -> None:
    run_step(backend_lifecycle.change)


def test_04_a_changed_master_key_is_refused_before_any_write(run_step: Step) -> None:
    run_step(backend_lifecycle.key_guard)


def test_05_drift_made_out_of_band_is_repaired_by_a_plain_up(run_step: Step) -> None:
    run_step(backend_lifecycle.drift)


def checkpoint_write(stack: str) -> Matcher:
    def matches(request: StoreRequest) -> bool:
        return request.operation == "PUT" and request.key == checkpoint_key(stack)

    return matches


def test_06_bob_is_locked_out_of_the_mux_alice_updates_and_still_reads_it(
    cycle: Lifecycle, r2: R2StateBucket, bob: PulumiWorkspace, timed: None
) -> None:
    cycle.workspace.write_plain_config(MUX_STACK, {"muxImage": MUX_IMAGE_V2})
    stalled = r2.front.faults.hold(checkpoint_write(MUX_STACK))
    alice_up = cycle.workspace.start("up", "--yes", "--skip-preview", "--stack", MUX_STACK)
    try:
        stalled.wait_for(1)
        (alice_lock,) = r2.locks(MUX_STACK)
        cycle.clear_logs()
        bucket_before = r2.objects()

        locked = bob.run("up", "--yes", "--skip-preview", "--stack", MUX_STACK)
        assert locked.returncode != 0
        assert LOCKED in locked.output, locked.output
        assert "pulumi cancel" in locked.output
        assert f"s3://{r2.bucket}/{alice_lock}" in locked.output  # names the lock
        assert alice_up.poll() is None, "Bob's up waited for Alice's instead of failing"
        assert cycle.vendor_writes() == []
        assert r2.objects() == bucket_before, "the locked-out up wrote to the bucket"

        reading = bob.run(
            "up", "--yes", "--skip-preview", "--expect-no-changes", "--stack", TENANTS_STACK
        )
        reading.expect_success()  # StackReference and readStackOutputs of the busy mux
        assert alice_up.poll() is None, "the read did not overlap Alice's update"
        assert cycle.vendor_writes() == []
    finally:
        stalled.release()
        _, alice_errors = alice_up.communicate(timeout=300)
    assert alice_up.returncode == 0, alice_errors
    assert MUX_IMAGE_V2 in cycle.phala.cvm_by_name(MUX).docker_compose_file
    assert r2.locks(MUX_STACK) == []


def test_07_a_sigkilled_up_leaves_its_lock_and_a_whole_checkpoint_and_the_readme_recovers(
    cycle: Lifecycle, r2: R2StateBucket, bob: PulumiWorkspace, timed: None
) -> None:
    cycle.workspace.write_plain_config(MUX_STACK, {"muxImage": MUX_IMAGE_V3})
    cycle.phala.clear_log()

    def after_the_mux_was_updated(request: StoreRequest) -> bool:
        return checkpoint_write(MUX_STACK)(request) and bool(write_requests(cycle.phala))

    cut_off = r2.front.faults.hold(after_the_mux_was_updated)
    alice_up = cycle.workspace.start("up", "--yes", "--skip-preview", "--stack", MUX_STACK)
    try:
        cut_off.wait_for(1)
    finally:
        kill_group(alice_up)  # the whole tree, as a killed laptop or CI job
        cut_off.drop()
    assert len(r2.locks(MUX_STACK)) == 1, "a killed up cannot release its lock"
    assert r2.checkpoint(MUX_STACK)["checkpoint"]["latest"]["resources"]
    readable = bob.run("stack", "export", "--stack", MUX_STACK).expect_success().json
    assert readable["deployment"]["resources"]

    share_stack_files(cycle.workspace, bob)  # Bob has pulled Alice's change
    ran = recover_as_documented(bob, MUX_STACK)
    assert "cancel --yes" in ran, ran
    assert [c.name for c in cycle.phala.cvms()].count(MUX) == 1
    assert MUX_IMAGE_V3 in cycle.phala.cvm_by_name(MUX).docker_compose_file
    assert r2.locks(MUX_STACK) == []
    exported = bob.run("stack", "export", "--stack", MUX_STACK).expect_success().json
    assert not exported["deployment"].get("pending_operations")


def test_08_destroy_leaves_no_cvm_and_empty_stacks(run_step: Step) -> None:
    run_step(backend_lifecycle.destroy)

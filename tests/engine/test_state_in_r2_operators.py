"""Two operators sharing the state bucket: each has a workspace of their own (their own
`PULUMI_HOME`, home folder and checkout; the stack files go between them as git would
carry them) and the same R2 bucket behind the R2 front.

While Alice's `up` of the mux stack is in flight (the front holds one of its checkpoint
writes, so the update stays in progress for as long as the test needs, without a sleep):
Bob's `up` of the same stack ends on the engine's lock message while Alice's is still
running, and changes nothing in either vendor or the bucket; Bob's `up` of the tenants
stack reads the mux stack's outputs and succeeds, writing nothing.

When Alice's `up` is SIGKILLed with a checkpoint write cut off, the bucket still holds a
whole checkpoint, her lock stays, and Bob recovers with the README's commands
(tests/support/readme_recovery.py): the lock goes with `pulumi cancel`, and the stack
converges.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from emulators.cloudflare import CloudflareEmulator
from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace, kill_group
from tests.support.engine_stacks import write_requests
from tests.support.joined_stacks import (
    MUX_STACK,
    TENANTS_STACK,
    configure_joined_stacks,
    share_stack_files,
    up,
)
from tests.support.moto_server import MotoServer
from tests.support.r2_front import Matcher, StoreRequest
from tests.support.r2_state import R2StateBucket, checkpoint_key, r2_state_bucket
from tests.support.readme_recovery import recover_as_documented
from tests.support.stack_configs import ACCOUNT_ID

MUX = "team-mux"
TENANTS = ("team-agent-0",)
MUX_IMAGE_V2 = "h4x3rotab/openclaw-mux@sha256:" + "2" * 64
MUX_IMAGE_V3 = "h4x3rotab/openclaw-mux@sha256:" + "3" * 64
LOCKED = "the stack is currently locked by 1 lock(s)"


@dataclass
class Team:
    alice: PulumiWorkspace
    bob: PulumiWorkspace
    phala: PhalaCloudEmulator
    cloudflare: CloudflareEmulator
    r2: R2StateBucket

    def clear_vendor_logs(self) -> None:
        self.phala.clear_log()
        self.cloudflare.clear_log()

    def vendor_writes(self) -> list[str]:
        cloudflare = [r for r in self.cloudflare.request_log if r.method != "GET"]
        return [f"{r.method} {r.path}" for r in [*write_requests(self.phala), *cloudflare]]


@pytest.fixture(scope="module")
def team(
    engine_dir: Path, moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Team]:
    root = tmp_path_factory.mktemp("r2-team")
    with ExitStack() as resources:
        phala = resources.enter_context(
            PhalaCloudEmulator(provision_seconds=0.2, update_seconds=0.2)
        )
        cloudflare = resources.enter_context(CloudflareEmulator(account_id=ACCOUNT_ID))
        r2 = resources.enter_context(r2_state_bucket(moto_server, root / "tls"))
        operators = []
        for name in ("alice", "bob"):
            operator = PulumiWorkspace(
                engine_dir,
                root / name,
                phala,
                cloudflare,
                backend_url=r2.login_url,
                extra_env=r2.credentials_env(),
            )
            resources.callback(operator.close)
            operators.append(operator)
        alice, bob = operators
        configure_joined_stacks(alice, MUX, TENANTS)
        up(alice, MUX_STACK)
        up(alice, TENANTS_STACK)
        share_stack_files(alice, bob)
        yield Team(alice, bob, phala, cloudflare, r2)


def is_checkpoint_write(stack: str) -> Matcher:
    def matches(request: StoreRequest) -> bool:
        return request.operation == "PUT" and request.key == checkpoint_key(stack)

    return matches


def test_while_alice_updates_the_mux_bob_is_locked_out_of_it_and_still_reads_it(
    team: Team,
) -> None:
    team.alice.write_plain_config(MUX_STACK, {"muxImage": MUX_IMAGE_V2})
    stalled = team.r2.front.hold(is_checkpoint_write(MUX_STACK))
    alice_up = team.alice.start("up", "--yes", "--skip-preview", "--stack", MUX_STACK)
    try:
        stalled.wait_for(1)
        (alice_lock,) = team.r2.locks(MUX_STACK)
        team.clear_vendor_logs()
        bucket_before = team.r2.objects()

        locked = team.bob.run("up", "--yes", "--skip-preview", "--stack", MUX_STACK)
        assert locked.returncode != 0
        assert LOCKED in locked.output, locked.output
        assert "pulumi cancel" in locked.output
        assert f"s3://{team.r2.bucket}/{alice_lock}" in locked.output  # names the lock
        assert alice_up.poll() is None, "Bob's up waited for Alice's instead of failing"
        assert team.vendor_writes() == []
        assert team.r2.objects() == bucket_before, "the locked-out up wrote to the bucket"

        reading = team.bob.run(
            "up", "--yes", "--skip-preview", "--expect-no-changes", "--stack", TENANTS_STACK
        )
        reading.expect_success()  # StackReference and readStackOutputs of the busy mux
        assert alice_up.poll() is None, "the read did not overlap Alice's update"
        assert team.vendor_writes() == []
    finally:
        stalled.release()
        _, alice_err = alice_up.communicate(timeout=300)
    assert alice_up.returncode == 0, alice_err
    assert MUX_IMAGE_V2 in team.phala.cvm_by_name(MUX).docker_compose_file
    assert team.r2.locks(MUX_STACK) == []


def test_a_sigkilled_up_leaves_its_lock_and_a_whole_checkpoint_and_the_readme_recovers(
    team: Team,
) -> None:
    team.alice.write_plain_config(MUX_STACK, {"muxImage": MUX_IMAGE_V3})
    team.phala.clear_log()

    def after_the_mux_was_updated(request: StoreRequest) -> bool:
        return is_checkpoint_write(MUX_STACK)(request) and bool(team.phala.requests("PATCH"))

    cut_off = team.r2.front.hold(after_the_mux_was_updated)
    alice_up = team.alice.start("up", "--yes", "--skip-preview", "--stack", MUX_STACK)
    try:
        cut_off.wait_for(1)
    finally:
        kill_group(alice_up)  # the whole tree, as a killed laptop or CI job
        cut_off.drop()
    assert len(team.r2.locks(MUX_STACK)) == 1, "a killed up cannot release its lock"
    assert team.r2.checkpoint(MUX_STACK)["checkpoint"]["latest"]["resources"]
    readable = team.bob.run("stack", "export", "--stack", MUX_STACK).expect_success().json
    assert readable["deployment"]["resources"]

    share_stack_files(team.alice, team.bob)  # Bob has pulled Alice's change
    ran = recover_as_documented(team.bob, MUX_STACK)
    assert "cancel --yes" in ran, ran
    assert [c.name for c in team.phala.cvms()].count(MUX) == 1
    assert MUX_IMAGE_V3 in team.phala.cvm_by_name(MUX).docker_compose_file
    assert team.r2.locks(MUX_STACK) == []
    exported = team.bob.run("stack", "export", "--stack", MUX_STACK).expect_success().json
    assert not exported["deployment"].get("pending_operations")

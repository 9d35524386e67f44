"""Faults of the state store during `pulumi up`, with the state in R2.

The R2 front (tests/support/r2_front.py) answers chosen requests with S3's 500
InternalError or 503 SlowDown, late, or refuses everything for a while. What the
pinned engine does about it (pulumi v3.274.0 on gocloud.dev s3blob and the AWS SDK for
Go v2 1.43): the SDK makes up to 3 attempts of every request on a 500/502/503/504
(aws/retry/standard.go: DefaultMaxAttempts, DefaultRetryableHTTPStatusCodes), and the
DIY backend retries a failed checkpoint write up to 10 more times, 1 s apart growing by
1.2x (pkg/backend/diy/state.go, saveCheckpoint), and a failed delete 2 more times
(bucket.go, retryOp); other requests are not retried beyond the SDK, and a lock it
still fails to delete is left behind with "manual clean up may be required" (lock.go,
Unlock).

One stack of two local tenants lives through, in file order: a store that is down
refuses the `up` before anything is deployed; a flaky and slow store is ridden out
during the create; an outage in the middle of an update is ridden out by the
checkpoint retries; a lock the store would not delete is cleared by the README's
recovery. After each, the checkpoint and its `.bak` parse, and the stack converges.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import STACK, local_stack_config, write_requests
from tests.support.moto_server import MotoServer
from tests.support.r2_state import R2StateBucket, checkpoint_key, lock_prefix, r2_state_bucket
from tests.support.readme_recovery import readme_recovery, recover_as_documented
from tests.support.store_faults import Matcher, StoreRequest

TENANTS = ("fault-agent-0", "fault-agent-1")
IMAGE_V2 = "h4x3rotab/openclaw-cvm@sha256:" + "f" * 64


@dataclass
class Store:
    workspace: PulumiWorkspace
    phala: PhalaCloudEmulator
    r2: R2StateBucket

    def up(self, *extra: str) -> None:
        self.workspace.run(
            "up", "--yes", "--skip-preview", "--stack", STACK, *extra
        ).expect_success()

    def assert_state_whole(self) -> None:
        """The checkpoint and its backup are whole JSON; no lock is left."""
        client = self.r2.moto.client()
        for key in (checkpoint_key(STACK), checkpoint_key(STACK) + ".bak"):
            body = client.get_object(Bucket=self.r2.bucket, Key=key)["Body"].read()
            assert json.loads(body)["checkpoint"]["stack"].endswith(f"/{STACK}"), key
        assert self.r2.locks(STACK) == []
        exported = self.workspace.run("stack", "export", "--stack", STACK).expect_success()
        assert not exported.json["deployment"].get("pending_operations")


def kind(operation: str, key_prefix: str) -> Matcher:
    def matches(request: StoreRequest) -> bool:
        listed = request.query.get("prefix", "")
        return request.operation == operation and (request.key or listed).startswith(key_prefix)

    return matches


@pytest.fixture(scope="module")
def store(
    engine_dir: Path, moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    root = tmp_path_factory.mktemp("r2-faults")
    with (
        PhalaCloudEmulator(provision_seconds=0.2, update_seconds=0.2) as phala,
        r2_state_bucket(moto_server, root / "tls") as r2,
    ):
        workspace = PulumiWorkspace(
            engine_dir,
            root / "engine",
            phala,
            backend_url=r2.login_url,
            extra_env=r2.credentials_env(),
        )
        try:
            config, secret_keys = local_stack_config(TENANTS)
            workspace.init_stack(STACK)
            workspace.configure(STACK, config, secret_keys)
            yield Store(workspace, phala, r2)
        finally:
            workspace.close()


def test_a_store_that_is_down_stops_the_up_before_any_vendor_write(store: Store) -> None:
    before = store.r2.objects()
    with store.r2.front.faults.outage(status=503) as outage:
        down = store.workspace.run("up", "--yes", "--skip-preview", "--stack", STACK)
    assert down.returncode != 0
    assert outage.refused, "the store was never asked"
    assert "503" in down.output or "SlowDown" in down.output, down.output
    assert "panic" not in down.output and "goroutine" not in down.output
    assert write_requests(store.phala) == []
    assert store.r2.objects() == before, "a refused up changed the bucket"


def test_a_flaky_and_slow_store_is_ridden_out_while_the_stack_is_created(store: Store) -> None:
    front = store.r2.front
    front.clear_log()
    checkpoint = checkpoint_key(STACK)
    front.faults.fail(kind("PUT", lock_prefix(STACK)), status=503)
    front.faults.fail(kind("GET", checkpoint), status=500)
    front.faults.fail(kind("LIST", checkpoint), status=503)
    front.faults.fail(kind("COPY", checkpoint + ".bak"), status=500)
    front.faults.fail(kind("PUT", checkpoint), status=503)
    front.faults.fail(kind("DELETE", lock_prefix(STACK)), status=500)
    front.faults.delay(kind("PUT", checkpoint), 1.0, times=3)
    store.up()

    failed = sorted((r.operation, r.outcome) for r in front.requests if "failed" in r.outcome)
    assert failed == [
        ("COPY", "failed 500"),
        ("DELETE", "failed 500"),
        ("GET", "failed 500"),
        ("LIST", "failed 503"),
        ("PUT", "failed 503"),  # the lock
        ("PUT", "failed 503"),  # a checkpoint
    ]
    retried = [r for r in front.requests if (r.attempt or 0) > 1]
    assert len(retried) == len(failed), "each failed request passes on the SDK's next attempt"
    assert not any(r.outcome.startswith("failed") for r in retried)
    assert sum(r.outcome == "delayed" for r in front.requests) == 3
    assert sorted(c.name for c in store.phala.cvms()) == sorted(TENANTS)
    store.assert_state_whole()
    store.workspace.run("preview", "--expect-no-changes", "--stack", STACK).expect_success()


def test_an_outage_in_the_middle_of_an_update_is_ridden_out(store: Store) -> None:
    store.workspace.write_plain_config(STACK, {"openclawImage": IMAGE_V2})
    store.phala.clear_log()

    def mid_update(request: StoreRequest) -> bool:
        return kind("PUT", checkpoint_key(STACK))(request) and bool(store.phala.requests("PATCH"))

    with store.r2.front.faults.outage(status=503, starting_with=mid_update) as outage:
        updating = store.workspace.start("up", "--yes", "--skip-preview", "--stack", STACK)
        # The SDK's 3 attempts of one write, and the first of the backend's own retries.
        refused = outage.wait_refused(4)
    _, errors = updating.communicate(timeout=300)
    assert updating.returncode == 0, errors
    assert {(r.operation, r.key) for r in refused} == {("PUT", checkpoint_key(STACK))}
    for tenant in TENANTS:
        assert IMAGE_V2 in store.phala.cvm_by_name(tenant).docker_compose_file
    store.assert_state_whole()
    store.workspace.run("preview", "--expect-no-changes", "--stack", STACK).expect_success()


def test_a_lock_the_store_would_not_delete_is_cleared_by_the_readme_recovery(
    store: Store,
) -> None:
    # 3 tries of the backend's, each of 3 attempts of the SDK's.
    store.r2.front.faults.fail(kind("DELETE", lock_prefix(STACK)), status=503, times=9)
    stuck = store.workspace.run("up", "--yes", "--expect-no-changes", "--stack", STACK)
    assert "manual clean up may be required" in stuck.output, stuck.output
    assert len(store.r2.locks(STACK)) == 1
    store.phala.clear_log()

    ran = recover_as_documented(store.workspace, STACK)
    documented = readme_recovery()
    first, *rest = (" ".join(command) for command in documented.commands)
    assert ran == [first, " ".join(documented.cancel), first, *rest]
    assert write_requests(store.phala) == []
    store.assert_state_whole()

"""A whole fleet through its life under the real engine, step by step, in file order.

The stack is shaped like Pulumi.prod.yaml: a mux, S3 tenants in the default and `eu`
jurisdictions, and a local tenant. Both vendors are emulated (Phala Cloud and Cloudflare);
each step checks the real `pulumi preview --json` / `up` result and the request logs, and
that the offline plan (`plan.diff.resource_changes`) names the same operation per
resource as the real preview. The wall time of each step is printed at the end.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components import r2
from emulators.cloudflare import CloudflareEmulator
from emulators.phala import Behaviour, PhalaCloudEmulator
from plan.__main__ import blocks_for
from plan.diff import FLAG_NEW_BUCKET, OwnerChanges, diff_plans, resource_changes
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import (
    ENGINE_TIMINGS,
    engine_operations,
    print_past_capture,
    write_requests,
)
from tests.support.stack_configs import prod_config

STACK = "prod"
IMAGE_V2 = "h4x3rotab/openclaw-cvm@sha256:" + "e" * 64


@dataclass
class Fleet:
    workspace: PulumiWorkspace
    phala: PhalaCloudEmulator
    cloudflare: CloudflareEmulator
    config: dict[str, Any]
    secret_keys: list[str]
    timings: list[tuple[str, float]] = field(default_factory=list)

    def change_tenant(self, name: str, **fields: Any) -> dict[str, Any]:
        """Set fields of one tenant in config; returns the config as it was before."""
        tenants = copy.deepcopy(self.config["tenants"])
        next(t for t in tenants if t["name"] == name).update(fields)
        return self.set_tenants(tenants)

    def tenant_index(self, name: str) -> int:
        return next(i for i, t in enumerate(self.config["tenants"]) if t["name"] == name)

    def offline_changes(self, before: dict[str, Any]) -> dict[str, OwnerChanges]:
        """What `plan diff` reports between the config before and now, by owner."""
        changes = diff_plans(self.blocks(before), self.blocks(self.config))
        return {change.owner: change for change in changes}

    def change(self, **values: Any) -> dict[str, Any]:
        """Apply config changes (plain keys); returns the config as it was before."""
        before = copy.deepcopy(self.config)
        self.config.update(values)
        self.workspace.write_plain_config(STACK, values)
        return before

    def set_tenants(self, tenants: list[dict[str, Any]]) -> dict[str, Any]:
        before = self.change(tenants=tenants)
        names = {t["name"] for t in tenants}
        for name in names - set(before["tenantSecrets"]):
            key = f"mk-{name}-" + hashlib.sha256(name.encode()).hexdigest()[:36]
            self.config["tenantSecrets"][name] = {"masterKey": key}
            self.workspace.set_secret(STACK, f"tenantSecrets.{name}.masterKey", key)
        return before

    def preview(
        self, before: dict[str, Any] | None, *, expect_failure: bool = False
    ) -> dict[str, str]:
        """The real preview's operation per resource, checked against the offline plan's
        between the config before the change (None: an empty stack) and now."""
        result = self.workspace.run("preview", "--json", "--stack", STACK)
        assert (result.returncode != 0) == expect_failure, result.output
        operations = engine_operations(result.json)
        base = self.blocks(before) if before is not None else []
        offline = resource_changes(base, self.blocks(self.config))
        assert {name: change.op for name, change in offline.items()} == operations
        return operations

    def blocks(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        return blocks_for(config, self.secret_keys, STACK)

    def up(self) -> None:
        self.workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()

    def clear_logs(self) -> None:
        self.phala.clear_log()
        self.cloudflare.clear_log()

    def cloudflare_writes(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.cloudflare.request_log if r.method != "GET"]


@pytest.fixture(scope="module")
def fleet(
    engine_dir: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Fleet]:
    config, secret_keys = prod_config()
    config["phalaVerifyHealth"] = False  # the emulator's gateway domain does not resolve
    state: Fleet | None = None
    with (
        PhalaCloudEmulator(behaviour=Behaviour(timings=ENGINE_TIMINGS)) as phala,
        CloudflareEmulator(account_id=config["cloudflareAccountId"]) as cloudflare,
    ):
        workspace = PulumiWorkspace(engine_dir, tmp_path_factory.mktemp("fleet"), phala, cloudflare)
        try:
            workspace.init_stack(STACK)
            workspace.configure(STACK, config, secret_keys)
            state = Fleet(workspace, phala, cloudflare, config, secret_keys)
            yield state
        finally:
            workspace.close()
    if state is not None and state.timings:
        lines = ["", "fleet lifecycle under the real engine (wall time per step):"]
        lines += [f"  {step:<72} {seconds:6.1f} s" for step, seconds in state.timings]
        print_past_capture(request, lines)


@pytest.fixture
def timed(fleet: Fleet, request: pytest.FixtureRequest) -> Iterator[None]:
    started = time.monotonic()
    yield
    step = request.node.name.removeprefix("test_").split("_", 1)[1].replace("_", " ")
    fleet.timings.append((step, time.monotonic() - started))


def s3_env(fleet: Fleet, tenant: str) -> dict[str, str]:
    cvm = fleet.phala.cvm_by_name(tenant)
    assert cvm is not None
    return fleet.phala.decrypted_env(cvm)


def test_01_create_makes_every_bucket_token_and_cvm(fleet: Fleet, timed: None) -> None:
    operations = fleet.preview(None)  # from an empty stack: everything is created
    assert set(operations.values()) == {"create"}
    fleet.up()

    account = fleet.config["cloudflareAccountId"]
    assert set(fleet.cloudflare.buckets()) == {
        ("default", "openclaw-alice-agent"),
        ("eu", "openclaw-bob-agent-eu"),
    }
    tokens = {t["name"]: t for t in fleet.cloudflare.tokens().values()}
    for tenant, jurisdiction, bucket in (
        ("alice-agent", "default", "openclaw-alice-agent"),
        ("bob-agent", "eu", "openclaw-bob-agent-eu"),
    ):
        token = tokens[r2.token_name(bucket)]
        (policy,) = token["policies"]
        assert policy["resources"] == {r2.bucket_resource_key(account, jurisdiction, bucket): "*"}
        assert [g["id"] for g in policy["permission_groups"]] == [
            "2efd5506f9c8494dacb1fa10a3e7d5b6"
        ]
        env = s3_env(fleet, tenant)
        assert env["S3_BUCKET"] == bucket
        assert env["AWS_ACCESS_KEY_ID"] == token["id"]
        value = fleet.cloudflare.token_value(token["id"])
        assert env["AWS_SECRET_ACCESS_KEY"] == hashlib.sha256(value.encode()).hexdigest()
        assert env["S3_ENDPOINT"] == r2.s3_endpoint(account, jurisdiction)
    assert "S3_BUCKET" not in s3_env(fleet, "staging-agent")
    assert sorted(c.name for c in fleet.phala.cvms()) == sorted(
        ["openclaw-mux", "alice-agent", "bob-agent", "staging-agent"]
    )


def test_02_no_op_preview_and_up_write_nothing(fleet: Fleet, timed: None) -> None:
    assert fleet.preview(copy.deepcopy(fleet.config)) == {}
    fleet.clear_logs()
    fleet.workspace.run("up", "--yes", "--expect-no-changes", "--stack", STACK).expect_success()
    assert write_requests(fleet.phala) == []
    assert fleet.cloudflare_writes() == []


def test_03_new_image_digest_updates_only_the_tenant_commands_in_place(
    fleet: Fleet, timed: None
) -> None:
    before_ids = {c.name: c.vm_uuid for c in fleet.phala.cvms()}
    before = fleet.change(openclawImage=IMAGE_V2)
    operations = fleet.preview(before)
    assert operations == {
        f"{name}-deploy": "update" for name in ("alice-agent", "bob-agent", "staging-agent")
    }
    fleet.clear_logs()
    fleet.up()
    assert {c.name: c.vm_uuid for c in fleet.phala.cvms()} == before_ids
    assert {r.method for r in write_requests(fleet.phala)} == {"PATCH"}
    assert fleet.cloudflare_writes() == []
    # Each updated CVM restarted, and the stack recorded the hash it runs now...
    recorded = fleet.workspace.run("stack", "output", "tenants", "--json", "--stack", STACK)
    tenants = recorded.expect_success().json
    for name in ("alice-agent", "bob-agent", "staging-agent"):
        cvm = fleet.phala.cvm_by_name(name)
        assert (cvm.restarts, cvm.in_progress) == (1, False), name
        assert tenants[name]["composeHash"] == cvm.compose_hash, name
    # ...so the next run finds no drift and writes nothing.
    fleet.clear_logs()
    fleet.workspace.run("up", "--yes", "--expect-no-changes", "--stack", STACK).expect_success()
    assert write_requests(fleet.phala) == [] and fleet.cloudflare_writes() == []


def test_04_s3_tenant_instance_type_replaces_only_its_cvm_deleting_first(
    fleet: Fleet, timed: None
) -> None:
    old = fleet.phala.cvm_by_name("bob-agent")
    before = fleet.change_tenant("bob-agent", instanceType="tdx.xlarge")
    assert fleet.preview(before) == {"bob-agent-deploy": "replace"}
    fleet.clear_logs()
    fleet.up()
    new = fleet.phala.cvm_by_name("bob-agent")
    assert new.vm_uuid != old.vm_uuid and new.instance_type == "tdx.xlarge"
    # The slow delete finished before the successor was created: one CVM of the name.
    assert [c.vm_uuid for c in fleet.phala.cvms() if c.name == "bob-agent" and not c.deleted] == [
        new.vm_uuid
    ]
    assert [r.status for r in fleet.phala.requests("POST", r"^/cvms/provision$")] == [200]
    writes = [f"{r.method} {r.path}" for r in write_requests(fleet.phala)]
    assert writes[0] == f"DELETE /cvms/{old.vm_uuid.replace('-', '')}", writes
    assert "POST /cvms/provision" in writes[1:]
    assert not any(w.startswith("PATCH") for w in writes), "no other CVM may be touched"
    assert fleet.cloudflare_writes() == []


def test_05_local_tenant_instance_type_is_refused_until_allow_data_loss(
    fleet: Fleet, timed: None
) -> None:
    old = fleet.phala.cvm_by_name("staging-agent")
    at = fleet.tenant_index("staging-agent")
    before = fleet.change_tenant("staging-agent", instanceType="tdx.medium")
    refused = fleet.workspace.run("preview", "--stack", STACK)
    assert refused.returncode != 0
    assert (
        f"openclaw-phala:tenants[{at}].instanceType (tenant staging-agent): instanceType "
        "'tdx.small' -> 'tdx.medium' replaces its CVM" in refused.output
    )
    assert f"set tenants[{at}].allowDataLoss: true for this `pulumi up`" in refused.output
    assert "unprotect" not in refused.output
    staging = fleet.offline_changes(before)["tenant/staging-agent"]
    assert "refused unless allowDataLoss is set" in staging.flags

    fleet.change_tenant("staging-agent", allowDataLoss=True)
    assert fleet.preview(before) == {
        "staging-agent-deploy": "replace",
        # The opt-in releases the CVM's guard (its delete no longer refuses).
        "staging-agent-local-state-needs-allowDataLoss": "update",
    }
    fleet.clear_logs()
    fleet.up()
    new = fleet.phala.cvm_by_name("staging-agent")
    assert new.vm_uuid != old.vm_uuid and new.instance_type == "tdx.medium"


def test_06_a_new_tenant_creates_only_its_resources(fleet: Fleet, timed: None) -> None:
    tenants = [*copy.deepcopy(fleet.config["tenants"]), {"name": "carol-agent", "storage": "s3"}]
    before = fleet.set_tenants(tenants)
    assert fleet.preview(before) == {
        "carol-agent-deploy": "create",
        "carol-agent-storage-bucket": "create",
        "carol-agent-storage-token": "create",
    }
    fleet.clear_logs()
    fleet.up()
    assert {f"{r.method} {r.path}" for r in write_requests(fleet.phala)} <= {
        "POST /cvms/provision",
        "POST /cvms",
    }
    assert ("default", "openclaw-carol-agent") in fleet.cloudflare.buckets()


def test_07_removing_an_s3_tenant_deletes_its_cvm_and_token_and_keeps_its_bucket(
    fleet: Fleet, timed: None
) -> None:
    alice_token = next(
        t["id"]
        for t in fleet.cloudflare.tokens().values()
        if t["name"] == r2.token_name("openclaw-alice-agent")
    )
    tenants = [t for t in copy.deepcopy(fleet.config["tenants"]) if t["name"] != "alice-agent"]
    before = fleet.change(tenants=tenants)
    # A tenant's secrets go with it (the program refuses secrets for unknown tenants).
    fleet.workspace.remove_config(STACK, "tenantSecrets.alice-agent")
    del fleet.config["tenantSecrets"]["alice-agent"]
    assert fleet.preview(before) == {
        "alice-agent-deploy": "delete",
        "alice-agent-storage-bucket": "delete",
        "alice-agent-storage-token": "delete",
    }
    fleet.clear_logs()
    fleet.up()
    assert fleet.phala.cvm_by_name("alice-agent") is None
    assert alice_token not in fleet.cloudflare.tokens()
    assert ("default", "openclaw-alice-agent") in fleet.cloudflare.buckets()  # retained
    assert not any("/r2/buckets" in w for w in fleet.cloudflare_writes())


def test_08_refresh_drops_what_was_deleted_out_of_band_and_up_recreates_it(
    fleet: Fleet, timed: None
) -> None:
    fleet.workspace.run("refresh", "--yes", "--stack", STACK).expect_success()
    fleet.workspace.run("preview", "--expect-no-changes", "--stack", STACK).expect_success()

    bob_token = next(
        t["id"]
        for t in fleet.cloudflare.tokens().values()
        if t["name"] == r2.token_name("openclaw-bob-agent-eu")
    )
    fleet.cloudflare.delete_token_behind_back(bob_token)
    fleet.cloudflare.delete_bucket_behind_back("openclaw-carol-agent")
    refreshed = fleet.workspace.run("refresh", "--yes", "--json", "--stack", STACK)
    refreshed.expect_success()
    fleet.up()

    tokens = {t["name"]: t for t in fleet.cloudflare.tokens().values()}
    new_token = tokens[r2.token_name("openclaw-bob-agent-eu")]
    assert new_token["id"] != bob_token
    # The CVM follows its new credentials.
    assert s3_env(fleet, "bob-agent")["AWS_ACCESS_KEY_ID"] == new_token["id"]
    assert ("default", "openclaw-carol-agent") in fleet.cloudflare.buckets()
    fleet.workspace.run("preview", "--expect-no-changes", "--stack", STACK).expect_success()


def test_09_a_new_jurisdiction_or_bucket_name_is_refused_then_gets_a_new_bucket_never_patched(
    fleet: Fleet, timed: None
) -> None:
    account = fleet.config["cloudflareAccountId"]
    bob, carol = fleet.tenant_index("bob-agent"), fleet.tenant_index("carol-agent")
    bob_token = s3_env(fleet, "bob-agent")["AWS_ACCESS_KEY_ID"]
    before = fleet.change_tenant("bob-agent", jurisdiction="default")
    fleet.change_tenant("carol-agent", bucket="openclaw-carol-agent-2")
    fleet.clear_logs()
    refused = fleet.workspace.run("preview", "--stack", STACK)
    assert refused.returncode != 0
    assert (
        f"openclaw-phala:tenants[{bob}].jurisdiction (tenant bob-agent): its state is in R2 "
        "bucket openclaw-bob-agent-eu (jurisdiction eu)" in refused.output
    )
    assert f"openclaw-phala:tenants[{carol}].bucket (tenant carol-agent)" in refused.output
    for at in (bob, carol):
        assert f"set tenants[{at}].allowNewBucket: true for this `pulumi up`" in refused.output
    assert fleet.cloudflare_writes() == [] and write_requests(fleet.phala) == []
    offline = fleet.offline_changes(before)
    assert FLAG_NEW_BUCKET in offline["tenant/bob-agent"].flags
    assert FLAG_NEW_BUCKET in offline["tenant/carol-agent"].flags

    fleet.change_tenant("bob-agent", allowNewBucket=True)
    fleet.change_tenant("carol-agent", allowNewBucket=True)
    assert fleet.preview(before) == {
        f"{name}-{resource}": op
        for name in ("bob-agent", "carol-agent")
        for resource, op in (
            ("storage-bucket", "replace"),
            ("storage-token", "update"),
            ("deploy", "update"),
        )
    }
    fleet.clear_logs()
    fleet.up()
    # Never the provider's in-place PATCH: a new bucket each, the old ones kept.
    assert sorted(fleet.cloudflare_writes()) == sorted(
        [f"POST /accounts/{account}/r2/buckets"] * 2
        + [
            f"PUT /accounts/{account}/tokens/{t}"
            for t in (bob_token, s3_env(fleet, "carol-agent")["AWS_ACCESS_KEY_ID"])
        ]
    )
    buckets = fleet.cloudflare.buckets()
    assert {("eu", "openclaw-bob-agent-eu"), ("default", "openclaw-bob-agent-eu")} <= set(buckets)
    assert {("default", "openclaw-carol-agent"), ("default", "openclaw-carol-agent-2")} <= set(
        buckets
    )
    bob_env = s3_env(fleet, "bob-agent")
    assert bob_env["S3_ENDPOINT"] == r2.s3_endpoint(account, "default")
    assert bob_env["AWS_ACCESS_KEY_ID"] == bob_token  # the same token, scoped anew
    assert s3_env(fleet, "carol-agent")["S3_BUCKET"] == "openclaw-carol-agent-2"

    # The opt-in is for one `pulumi up`: without it, nothing is left to do.
    tenants = copy.deepcopy(fleet.config["tenants"])
    for tenant in tenants:
        tenant.pop("allowNewBucket", None)
    fleet.change(tenants=tenants)
    fleet.workspace.run("preview", "--expect-no-changes", "--stack", STACK).expect_success()


def test_10_destroy_after_release_leaves_only_the_retained_buckets(
    fleet: Fleet, timed: None
) -> None:
    fleet.change(muxAllowDataLoss=True)
    fleet.up()
    fleet.workspace.run("destroy", "--yes", "--stack", STACK).expect_success()
    assert fleet.phala.cvms() == []
    assert fleet.cloudflare.tokens() == {}
    assert set(fleet.cloudflare.buckets()) == {
        ("default", "openclaw-alice-agent"),
        ("eu", "openclaw-bob-agent-eu"),
        ("default", "openclaw-bob-agent-eu"),
        ("default", "openclaw-carol-agent"),
        ("default", "openclaw-carol-agent-2"),
    }

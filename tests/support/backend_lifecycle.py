"""One lifecycle of two stacks joined by `muxStack`, runnable on any state backend.

The engine test tests/engine/test_state_in_r2_lifecycle.py runs it on state kept in R2
(the README's team setup); benchmarks/state_backends.py runs the very same steps on a
`file://` folder and on R2 and prints their wall times side by side. Each step asserts
what it promises, on either backend:

1. create: the mux stack, then the tenants stack, whose tenants join the mux;
2. no-op: an `up` of each stack writes nothing to either vendor;
3. change: a new image digest updates the tenants in place, through Phala only;
4. key guard: a changed MASTER_KEY fails the `up` before any vendor write;
5. drift: a compose changed and a CVM deleted out of band are repaired by a plain `up`,
   and the next `up` writes nothing;
6. destroy: both stacks, leaving no CVM, no token and empty checkpoints.

After every step both checkpoints must parse and no lock may be left; on R2 every
request must also have been accepted by the front (tests/support/r2_front.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.compose import openclaw_compose
from emulators.cloudflare import CloudflareEmulator
from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import write_requests
from tests.support.joined_stacks import (
    MUX_STACK,
    TENANTS_STACK,
    configure_joined_stacks,
    joined_mux,
    mux_outputs,
    up,
)
from tests.support.moto_server import MotoServer
from tests.support.r2_state import PROJECT, R2StateBucket, r2_state_bucket
from tests.support.stack_configs import ACCOUNT_ID, master_key_for

MUX = "cycle-mux"
TENANTS = ("cycle-agent-0", "cycle-agent-1")
IMAGE_V2 = "h4x3rotab/openclaw-cvm@sha256:" + "c" * 64
NEW_KEY = "a-brand-new-master-key-0123456789abcdef0123"


@dataclass
class Lifecycle:
    workspace: PulumiWorkspace
    phala: PhalaCloudEmulator
    cloudflare: CloudflareEmulator
    r2: R2StateBucket | None  # None: the workspace's own file:// backend

    @property
    def backend(self) -> str:
        return "file" if self.r2 is None else "r2"

    def clear_logs(self) -> None:
        self.phala.clear_log()
        self.cloudflare.clear_log()
        if self.r2 is not None:
            self.r2.front.clear_log()

    def vendor_writes(self) -> list[str]:
        phala = [f"phala {r.method} {r.path}" for r in write_requests(self.phala)]
        cloudflare = [
            f"cloudflare {r.method} {r.path}"
            for r in self.cloudflare.request_log
            if r.method != "GET"
        ]
        return phala + cloudflare

    def checkpoint(self, stack: str) -> dict[str, Any]:
        if self.r2 is not None:
            return self.r2.checkpoint(stack)
        path = self.workspace.backend_dir / ".pulumi" / "stacks" / PROJECT / f"{stack}.json"
        return json.loads(path.read_text())

    def locks(self, stack: str) -> list[str]:
        if self.r2 is not None:
            return self.r2.locks(stack)
        folder = self.workspace.backend_dir / ".pulumi" / "locks" / "organization" / PROJECT
        return sorted(str(path) for path in (folder / stack).glob("*"))

    def resources(self, stack: str) -> list[dict[str, Any]]:
        return (self.checkpoint(stack)["checkpoint"].get("latest") or {}).get("resources") or []

    def assert_state_whole(self) -> None:
        """Both checkpoints parse, no lock is left, and R2 refused nothing."""
        for stack in (MUX_STACK, TENANTS_STACK):
            assert self.checkpoint(stack)["checkpoint"]["stack"].endswith(f"/{stack}")
            assert self.locks(stack) == [], f"a lock was left on {stack}"
        if self.r2 is not None:
            requests = self.r2.front.requests
            assert requests, "the engine never reached the R2 front"
            assert [r for r in requests if r.outcome != "forwarded"] == []
            assert {(r.bucket, r.region) for r in requests} == {(self.r2.bucket, "auto")}


@contextmanager
def lifecycle_on(
    backend: str, engine_dir: Path, root: Path, moto: MotoServer | None
) -> Iterator[Lifecycle]:
    """Emulators and one operator's workspace on the `file` or `r2` backend."""
    with ExitStack() as resources:
        phala = resources.enter_context(
            PhalaCloudEmulator(provision_seconds=0.2, update_seconds=0.2)
        )
        cloudflare = resources.enter_context(CloudflareEmulator(account_id=ACCOUNT_ID))
        r2: R2StateBucket | None = None
        options: dict[str, Any] = {}
        if backend == "r2":
            assert moto is not None, "the r2 backend needs the moto server"
            r2 = resources.enter_context(r2_state_bucket(moto, root / "tls"))
            options = {"backend_url": r2.login_url, "extra_env": r2.credentials_env()}
        workspace = PulumiWorkspace(engine_dir, root / "engine", phala, cloudflare, **options)
        resources.callback(workspace.close)
        yield Lifecycle(workspace, phala, cloudflare, r2)


def create(cycle: Lifecycle) -> None:
    configure_joined_stacks(cycle.workspace, MUX, TENANTS)
    up(cycle.workspace, MUX_STACK)
    up(cycle.workspace, TENANTS_STACK)

    assert sorted(c.name for c in cycle.phala.cvms()) == sorted([MUX, *TENANTS])
    mux = mux_outputs(cycle.workspace)
    for tenant in TENANTS:
        joined = joined_mux(cycle.phala, tenant)
        assert joined["baseUrl"] == mux["mux"]["baseUrl"]
        assert joined["registerKey"] == mux["muxSecrets"]["registerKey"]
    assert {name for _, name in cycle.cloudflare.buckets()} == {f"openclaw-{t}" for t in TENANTS}
    cycle.assert_state_whole()


def no_op(cycle: Lifecycle) -> None:
    cycle.clear_logs()
    up(cycle.workspace, MUX_STACK, "--expect-no-changes")
    up(cycle.workspace, TENANTS_STACK, "--expect-no-changes")
    assert cycle.vendor_writes() == []
    cycle.assert_state_whole()


def change(cycle: Lifecycle) -> None:
    before = {c.name: c.vm_uuid for c in cycle.phala.cvms()}
    cycle.workspace.write_plain_config(TENANTS_STACK, {"openclawImage": IMAGE_V2})
    cycle.clear_logs()
    up(cycle.workspace, TENANTS_STACK)

    assert {c.name: c.vm_uuid for c in cycle.phala.cvms()} == before
    assert sorted(r.method for r in write_requests(cycle.phala)) == ["PATCH"] * len(TENANTS)
    for tenant in TENANTS:
        assert IMAGE_V2 in cycle.phala.cvm_by_name(tenant).docker_compose_file
    assert [w for w in cycle.vendor_writes() if w.startswith("cloudflare")] == []
    cycle.assert_state_whole()


def key_guard(cycle: Lifecycle) -> None:
    secret = f"tenantSecrets.{TENANTS[1]}.masterKey"
    cycle.workspace.set_secret(TENANTS_STACK, secret, NEW_KEY)
    cycle.clear_logs()
    refused = cycle.workspace.run("up", "--yes", "--skip-preview", "--stack", TENANTS_STACK)

    assert refused.returncode != 0
    expected = (
        f"openclaw-phala:{secret} (tenant {TENANTS[1]}): differs from the key it is running with"
    )
    assert expected in refused.output, refused.output
    assert cycle.vendor_writes() == [], "a refused key must reach no vendor"
    running = cycle.phala.decrypted_env(cycle.phala.cvm_by_name(TENANTS[1]))
    assert running["MASTER_KEY"] == master_key_for(TENANTS[1])
    cycle.workspace.set_secret(TENANTS_STACK, secret, master_key_for(TENANTS[1]))
    cycle.assert_state_whole()


def drift(cycle: Lifecycle) -> None:
    cycle.phala.change_compose_externally(TENANTS[0], "services:\n  hand-made:\n    image: x\n")
    cycle.phala.delete_behind_back(TENANTS[1])
    up(cycle.workspace, TENANTS_STACK)

    assert cycle.phala.cvm_by_name(TENANTS[0]).docker_compose_file == openclaw_compose(IMAGE_V2)
    assert cycle.phala.cvm_by_name(TENANTS[1]) is not None
    cycle.clear_logs()
    up(cycle.workspace, TENANTS_STACK, "--expect-no-changes")
    assert cycle.vendor_writes() == []
    cycle.assert_state_whole()


def destroy(cycle: Lifecycle) -> None:
    cycle.clear_logs()
    for stack in (TENANTS_STACK, MUX_STACK):
        cycle.workspace.run("destroy", "--yes", "--stack", stack).expect_success()

    assert cycle.phala.cvms() == []
    assert cycle.cloudflare.tokens() == {}
    assert len(cycle.cloudflare.buckets()) == len(TENANTS)  # tenant buckets are kept
    for stack in (MUX_STACK, TENANTS_STACK):
        assert cycle.resources(stack) == []
    cycle.assert_state_whole()


STEPS: tuple[tuple[str, Callable[[Lifecycle], None]], ...] = (
    ("create both stacks, the tenants joining the mux", create),
    ("no-op up of each stack: no vendor write", no_op),
    ("new image digest: tenants updated in place", change),
    ("changed MASTER_KEY refused before any write", key_guard),
    ("drift repaired by a plain up, then no write", drift),
    ("destroy both stacks", destroy),
)

"""Stack configs and readers of engine results shared by the engine tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from emulators.phala import Behaviour, PhalaCloudEmulator, RequestRecord, Timings
from sandbox.engine import shown as shown  # re-exported for the engine tests
from tests.support.engine_harness import PulumiWorkspace
from tests.support.stack_configs import MUX_IMAGE, base_config, with_secrets

STACK = "dev"
# The engine tests' Phala service: every phase of a restart and a delete, fast. The grace
# after an accepted update (still "running", in progress) is longer than a status poll, so
# a deploy that mistook it for the end would show.
ENGINE_TIMINGS = Timings(
    boot=0.2, update_grace=0.3, stop=0.05, stopped=0.05, restart_boot=0.1, delete=0.5
)
COMMAND_TYPE = "command:local:Command"


@contextmanager
def engine_emulator() -> Iterator[PhalaCloudEmulator]:
    """The service as hostile as reality, fast: updates restart, deletes take a moment."""
    with PhalaCloudEmulator(behaviour=Behaviour(timings=ENGINE_TIMINGS)) as running:
        yield running


@contextmanager
def opened_workspace(
    engine_dir: Path, root: Path, emulator: PhalaCloudEmulator
) -> Iterator[PulumiWorkspace]:
    """A workspace closed (every process it started stopped) however the block ends."""
    workspace = PulumiWorkspace(engine_dir, root, emulator)
    try:
        yield workspace
    finally:
        workspace.close()


# Phala API calls that only read, although one of them is a POST.
_READ_ONLY = {("POST", "/status/batch")}


def local_stack_config(
    tenants: Sequence[str], *, mux: str | None = None, **overrides: Any
) -> tuple[dict[str, Any], list[str]]:
    """Local-storage tenants (no Cloudflare resource), optionally a mux; health checks off,
    since the emulator's gateway domain does not resolve."""
    mux_settings: dict[str, Any] = (
        {"muxName": mux, "muxImage": MUX_IMAGE, "muxChannels": ["telegram"]} if mux else {}
    )
    config = base_config(
        tenants=[{"name": name, "storage": "local"} for name in tenants],
        **{"phalaVerifyHealth": False, **mux_settings, **overrides},
    )
    config.pop("cloudflareAccountId")
    return with_secrets(config)


def preview_ops(preview: dict[str, Any]) -> dict[str, str]:
    """URN -> step op of a `pulumi preview --json`, without the unchanged ("same") ones and
    the reads (the program reads its own last outputs on every run)."""
    return {
        step["urn"]: step["op"]
        for step in preview.get("steps", [])
        if step.get("op") not in ("same", "read")
    }


# The resources whose operations the offline plan predicts.
PLANNED_TYPES = frozenset(
    {
        COMMAND_TYPE,
        "cloudflare:index/r2Bucket:R2Bucket",
        "cloudflare:index/accountToken:AccountToken",
    }
)
_REPLACE_STEPS = frozenset({"replace", "create-replacement", "delete-replaced"})


def engine_operations(preview: dict[str, Any]) -> dict[str, str]:
    """Resource name -> create/update/replace/delete, from a `pulumi preview --json`."""
    operations: dict[str, str] = {}
    for step in preview.get("steps", []):
        state = step.get("newState") or step.get("oldState") or {}
        if state.get("type") not in PLANNED_TYPES or step["op"] in ("same", "read", "refresh"):
            continue
        op = "replace" if step["op"] in _REPLACE_STEPS else step["op"]
        operations[step["urn"].rsplit("::", 1)[-1]] = op
    return operations


def export_resources(workspace: PulumiWorkspace, stack: str, *, show_secrets: bool) -> list[Any]:
    args = ["stack", "export", "--stack", stack]
    if show_secrets:
        args.append("--show-secrets")
    document = workspace.run(*args).expect_success().json
    return document["deployment"].get("resources", [])


def command_states(workspace: PulumiWorkspace, stack: str) -> dict[str, dict[str, Any]]:
    """CVM name -> its Command's outputs in state, secrets shown (what the engine passed on)."""
    states = {}
    for resource in export_resources(workspace, stack, show_secrets=True):
        if resource["type"] == COMMAND_TYPE:
            name = resource["urn"].rsplit("::", 1)[-1].removesuffix("-deploy")
            states[name] = shown(resource["outputs"])
    return states


def print_past_capture(request: pytest.FixtureRequest, lines: Sequence[str]) -> None:
    """Print to the terminal even while pytest captures output (timings for the notes)."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n".join(lines), flush=True)


def write_requests(emulator: PhalaCloudEmulator) -> list[RequestRecord]:
    return [
        record
        for record in emulator.request_log
        if record.method != "GET" and (record.method, record.path) not in _READ_ONLY
    ]

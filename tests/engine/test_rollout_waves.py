"""Staged rollouts under the real engine: wave 1 starts only after all of wave 0 is
deployed and has passed its health check; a wave-0 health failure stops the rollout
before wave 1 is touched."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from driver.spec import HEALTH_URL_OVERRIDE_VAR
from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import STACK, local_stack_config

WAVE_0 = ("wave0-agent-a", "wave0-agent-b")
WAVE_1 = ("wave1-agent-a", "wave1-agent-b")
IMAGE_V2 = "h4x3rotab/openclaw-cvm@sha256:" + "5" * 64


@dataclass
class GatewayHealth:
    """Answers each CVM's gateway health check; CVMs named in `failing` answer 503."""

    emulator: PhalaCloudEmulator
    failing: set[str] = field(default_factory=set)
    passed: list[tuple[str, float]] = field(default_factory=list)  # (cvm name, when)

    def name_of(self, app_id: str) -> str | None:
        for cvm in self.emulator.cvms():
            if cvm.app_id.removeprefix("app_") == app_id:
                return cvm.name
        return None

    def answer(self, path: str) -> int:
        app_id = parse_qs(urlsplit(path).query).get("app", [""])[0]
        name = self.name_of(app_id)
        if name is None or name in self.failing:
            return 503
        self.passed.append((name, time.monotonic()))
        return 200


@pytest.fixture
def health(emulator: PhalaCloudEmulator) -> Iterator[tuple[GatewayHealth, str]]:
    state = GatewayHealth(emulator)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = state.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/health?app={{app_id}}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def waved(workspace: PulumiWorkspace, health: tuple[GatewayHealth, str]) -> PulumiWorkspace:
    _, template = health
    workspace.extra_env[HEALTH_URL_OVERRIDE_VAR] = template
    config, secret_keys = local_stack_config(
        (*WAVE_0, *WAVE_1), phalaVerifyHealth=True, phalaWaitTimeoutSeconds=30
    )
    for tenant in config["tenants"]:
        tenant["rolloutWave"] = 1 if tenant["name"] in WAVE_1 else 0
    workspace.init_stack(STACK)
    workspace.configure(STACK, config, secret_keys)
    return workspace


def first_request_at(emulator: PhalaCloudEmulator, names: tuple[str, ...]) -> float:
    """When the first deploy request for any of these CVMs arrived."""
    ids = {cvm.vm_uuid.replace("-", "") for cvm in emulator.cvms() if cvm.name in names}
    times = [
        record.at
        for record in emulator.request_log
        if (isinstance(record.body, dict) and record.body.get("name") in names)
        or any(cvm_id in record.path.replace("-", "") for cvm_id in ids)
    ]
    return min(times)


def test_wave_one_starts_after_wave_zero_is_deployed_and_healthy(
    waved: PulumiWorkspace, emulator: PhalaCloudEmulator, health: tuple[GatewayHealth, str]
) -> None:
    state, _ = health
    waved.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()
    wave0_healthy = max(at for name, at in state.passed if name in WAVE_0)
    assert {name for name, _ in state.passed} == {*WAVE_0, *WAVE_1}
    assert first_request_at(emulator, WAVE_1) > wave0_healthy


def test_a_wave_zero_health_failure_stops_the_rollout_before_wave_one(
    waved: PulumiWorkspace, emulator: PhalaCloudEmulator, health: tuple[GatewayHealth, str]
) -> None:
    state, _ = health
    waved.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()
    wave1_ids = {cvm.vm_uuid.replace("-", "") for cvm in emulator.cvms() if cvm.name in WAVE_1}

    state.failing.add(WAVE_0[0])
    waved.write_plain_config(STACK, {"openclawImage": IMAGE_V2})
    emulator.clear_log()
    rollout = waved.run("up", "--yes", "--skip-preview", "--stack", STACK)
    assert rollout.returncode != 0
    assert f"CVM {WAVE_0[0]} is running but" in rollout.output
    # The program reads every CVM for drift before deploying; once the rollout started
    # (the first update of wave 0), wave 1 saw no request at all.
    started = min(r.at for r in emulator.request_log if r.method == "PATCH")
    touched = [
        f"{r.method} {r.path}"
        for r in emulator.request_log
        if r.at >= started and any(i in r.path.replace("-", "") for i in wave1_ids)
    ]
    assert touched == []
    assert all(
        IMAGE_V2 not in cvm.docker_compose_file for cvm in emulator.cvms() if cvm.name in WAVE_1
    )


def test_an_image_rollout_updates_wave_one_only_after_wave_zero_has_restarted(
    waved: PulumiWorkspace, emulator: PhalaCloudEmulator, health: tuple[GatewayHealth, str]
) -> None:
    waved.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()
    waved.write_plain_config(STACK, {"openclawImage": IMAGE_V2})
    emulator.clear_log()
    # Wave 0's updates are accepted and then held where the service still says "running"
    # (the old containers answer their health checks): only a deploy that waits for the
    # operation to end can tell it has not restarted yet.
    for name in WAVE_0:
        emulator.hold_next_operation(name)
    ids = {cvm.name: cvm.vm_uuid.replace("-", "") for cvm in emulator.cvms()}

    rollout = waved.start("up", "--yes", "--skip-preview", "--stack", STACK)
    try:
        deadline = time.monotonic() + 240
        while not all(polls_after_patch(emulator, ids[name]) >= 3 for name in WAVE_0):
            if rollout.poll() is not None or patched(emulator, ids, WAVE_1):
                break  # a deploy that did not wait: wave 1 goes ahead
            assert time.monotonic() < deadline, "wave 0 was never updated"
            time.sleep(0.1)
        released_at = time.time()
        emulator.reset_faults()
        for name in WAVE_0:
            emulator.finish_pending(name)
        stdout, stderr = rollout.communicate(timeout=300)
    finally:
        if rollout.poll() is None:
            rollout.kill()
            rollout.wait()

    assert rollout.returncode == 0, stdout + stderr
    wave1_patched = [
        r.at for r in emulator.requests("PATCH") if names_in(r.path, ids) & set(WAVE_1)
    ]
    assert wave1_patched and min(wave1_patched) > released_at
    cvms = emulator.cvms()
    assert all(cvm.restarts == 1 and IMAGE_V2 in cvm.docker_compose_file for cvm in cvms)


def names_in(path: str, ids: dict[str, str]) -> set[str]:
    flat = path.replace("-", "")
    return {name for name, cvm_id in ids.items() if cvm_id in flat}


def patched(emulator: PhalaCloudEmulator, ids: dict[str, str], names: tuple[str, ...]) -> bool:
    return any(names_in(r.path, ids) & set(names) for r in emulator.requests("PATCH"))


def polls_after_patch(emulator: PhalaCloudEmulator, cvm_id: str) -> int:
    """How often the CVM was read (by its deploy) since its update was accepted."""
    records = [r for r in emulator.request_log if cvm_id in r.path.replace("-", "")]
    patches = [index for index, r in enumerate(records) if r.method == "PATCH"]
    if not patches:
        return 0
    return sum(1 for r in records[patches[0] + 1 :] if r.method == "GET")

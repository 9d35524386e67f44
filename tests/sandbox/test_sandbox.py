"""`./scripts/sandbox up`, again, `status`, the dashboard link in a browser, and `down`, as an
operator runs them: the real engine with the stand-in plugins, the deploy driver with the
real phala CLI, the local APIs as processes of their own, the real OpenClaw gateway.

The tests share one sandbox and run in order (cold up, warm up, status, browser, down); each
asserts its own step. The screenshots of the browser test are kept in
test-artifacts/sandbox/ (control-ui-signed-in.png, control-ui-without-token.png).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulators.request_log import read_json_lines
from sandbox.engine import PulumiWorkspace, locate_engine
from sandbox.folder import SandboxFolder
from sandbox.lifecycle import MARKER_VAR, open_workspace
from sandbox.processes import Recorded, processes_with_env
from sandbox.services import LocalCloudflare, LocalPhala, is_write
from tests.sandbox.conftest import ARTIFACTS, MemoryPlace, Run, run_sandbox
from tests.support.secret_scan import scan_text

LINK = re.compile(r"^  (http://127\.0\.0\.1:(\d+)/#token=(\S+))$")
TENANTS = ("alice-agent", "bob-agent", "staging-agent")
MAX_SCANNED_BYTES = 20 * 1024 * 1024
CONTROL_UI = Path(__file__).with_name("control_ui.mjs")


@dataclass(frozen=True)
class ColdUp:
    run: Run
    started: float  # wall-clock time before it began (files written since are scanned)
    link: str


@pytest.fixture(scope="module")
def cold_up(memory_place: MemoryPlace, engine_dir: Path, oracle_dir: Path) -> ColdUp:
    """The module's sandbox: `up` in a folder where none ran before."""
    started = time.time()
    run = run_sandbox("up", "--plugins", "standins", env=memory_place.env)
    assert run.returncode == 0, run.text
    return ColdUp(run, started, _link(run)[0])


def _link(run: Run) -> tuple[str, int, str]:
    found = [LINK.match(line) for line in run.lines]
    matches = [match for match in found if match]
    assert matches, run.text
    link, port, token = matches[-1].groups()
    return link, int(port), token


def _folder(place: MemoryPlace) -> SandboxFolder:
    return SandboxFolder(place.sandbox_dir)


def _state(place: MemoryPlace) -> dict[str, Any]:
    return _folder(place).read_state()


def _writes(folder: SandboxFolder, service: str, start: int = 0) -> list[dict[str, Any]]:
    return [e for e in read_json_lines(folder.request_log(service), start) if is_write(service, e)]


def test_a_cold_up_deploys_the_demo_stack_and_ends_with_the_dashboard_link(
    memory_place: MemoryPlace, cold_up: ColdUp
) -> None:
    run = cold_up.run
    assert run.lines[0].startswith("sandbox: local stand-in provider plugins"), run.lines[0]

    # Progress while it works: the steps and the engine's own lines came before the end.
    pulumi_lines = [i for i, line in enumerate(run.lines) if line.startswith("    | ")]
    assert pulumi_lines and all(run.while_running[i] for i in pulumi_lines[:5])
    assert any("command:local:Command alice-agent-deploy created" in line for line in run.lines)

    # What an operator gets: the outputs, ops status, where things live, the link.
    for tenant in TENANTS:
        assert any(line.startswith(f"  {tenant} ") for line in run.lines), tenant
    assert "    | all 4 CVMs ok" in run.lines
    assert f"Where things live (one folder, in memory, mode 0700): {memory_place.sandbox_dir}" in (
        run.lines
    )
    _, port, token = _link(run)

    # The APIs were really written to: four CVMs, two buckets and two tokens.
    folder = _folder(memory_place)
    provisions = [e["cvm"] for e in _writes(folder, "phala") if e["path"] == "/cvms/provision"]
    assert sorted(provisions) == sorted([*TENANTS, "openclaw-mux"])
    cloudflare = [
        (e["method"], e["path"].rsplit("/", 1)[-1]) for e in _writes(folder, "cloudflare")
    ]
    assert sorted(cloudflare) == sorted([("POST", "buckets")] * 2 + [("POST", "tokens")] * 2)

    # The gateway runs from exactly what the program gave alice-agent.
    state = _state(memory_place)
    assert state["services"]["gateway"]["port"] == port
    gateway_state = folder.gateway_root / "alice-agent" / "state"
    config = json.loads((gateway_state / "openclaw.json").read_text())
    assert config["gateway"]["auth"]["token"] == token
    device = json.loads((gateway_state / "identity" / "device.json").read_text())
    outputs = _outputs(memory_place)
    assert device["deviceId"] == outputs["tenants"]["alice-agent"]["openclawId"]
    assert outputs["tenantSecrets"]["alice-agent"]["gatewayToken"] == token


def _outputs(place: MemoryPlace) -> dict[str, Any]:
    workspace = _workspace(place)
    try:
        result = workspace.run("stack", "output", "--json", "--show-secrets", "--stack", "sandbox")
        outputs: dict[str, Any] = result.expect_success().json
        return outputs
    finally:
        workspace.close()


def _workspace(place: MemoryPlace) -> PulumiWorkspace:
    state = _state(place)
    return open_workspace(
        _folder(place),
        locate_engine(),
        LocalPhala(state["services"]["phala"]["url"]),
        LocalCloudflare(state["services"]["cloudflare"]["url"]),
        [],
        place.env,
        poll_seconds=1,
    )


def test_a_second_up_changes_nothing_and_writes_nothing_to_either_api(
    memory_place: MemoryPlace, cold_up: ColdUp
) -> None:
    folder = _folder(memory_place)
    marks = {
        name: len(read_json_lines(folder.request_log(name))) for name in ("phala", "cloudflare")
    }
    gateway_before = _state(memory_place)["services"]["gateway"]["pid"]

    run = run_sandbox("up", "--plugins", "standins", env=memory_place.env)

    assert run.returncode == 0, run.text
    assert any("the sandbox runs already" in line for line in run.lines)
    assert _writes(folder, "phala", marks["phala"]) == []
    assert _writes(folder, "cloudflare", marks["cloudflare"]) == []
    assert read_json_lines(folder.request_log("phala"), marks["phala"])  # it did read
    assert "  Phala Cloud API: 0 writes" in "\n".join(run.lines)
    assert any(line.startswith("  Cloudflare API: 0 writes") for line in run.lines)
    assert _link(run)[0] == cold_up.link
    assert _state(memory_place)["services"]["gateway"]["pid"] == gateway_before


def test_status_says_what_runs_and_how_the_cvms_are(
    memory_place: MemoryPlace, cold_up: ColdUp
) -> None:
    run = run_sandbox("status", env=memory_place.env)
    assert run.returncode == 0, run.text
    rows = {line.split()[0]: line.split() for line in run.lines if line.startswith("  ")}
    for name in ("phala", "cloudflare", "gateway"):
        assert rows[name][2] == "running", run.text
    assert "    | all 4 CVMs ok" in run.lines
    assert run.lines[-1].endswith(cold_up.link)


def _control_ui(oracle_dir: Path, place: MemoryPlace, link: str, name: str) -> dict[str, Any]:
    """The Control UI at `link` in headless Chromium; its screenshot kept as an artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    profile = place.root / f"browser-{name}"  # in memory: the UI keeps the token there
    try:
        completed = subprocess.run(
            [
                str(oracle_dir / "node" / "bin" / "node"),
                str(CONTROL_UI),
                str(profile),
                str(ARTIFACTS / f"{name}.png"),
            ],
            input=link,  # it holds the token: on stdin, never in argv
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "TMPDIR": str(place.root), "HOME": str(place.root)},
            start_new_session=True,
            check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _green(pixels: dict[str, float]) -> bool:
    return pixels["g"] > pixels["r"] + 50 and pixels["g"] > pixels["b"] + 20


def _red(pixels: dict[str, float]) -> bool:
    return pixels["r"] > pixels["g"] + 50 and pixels["r"] > pixels["b"] + 50


def test_the_printed_dashboard_link_opens_the_control_ui_past_its_token_prompt(
    memory_place: MemoryPlace, cold_up: ColdUp, oracle_dir: Path
) -> None:
    signed_in = _control_ui(oracle_dir, memory_place, cold_up.link, "control-ui-signed-in")
    assert signed_in["health"] == "OK"
    assert "ok" in signed_in["statusDot"].split()
    assert signed_in["disconnected"] == []
    assert signed_in["composer"]["disabled"] is False
    assert signed_in["composer"]["placeholder"].startswith("Message")
    assert "token=" not in signed_in["url"]  # the UI took the token and cleared the address
    assert _green(signed_in["dotPixels"]), signed_in["dotPixels"]  # from the screenshot
    assert (ARTIFACTS / "control-ui-signed-in.png").stat().st_size > 10_000

    # The same page without the link's token stays at the gateway's refusal: the checks
    # above tell the two apart.
    bare = cold_up.link.split("#", 1)[0]
    refused = _control_ui(oracle_dir, memory_place, bare, "control-ui-without-token")
    assert refused["health"] == "Offline"
    assert refused["disconnected"]
    assert refused["composer"]["disabled"] is True
    assert _red(refused["dotPixels"]), refused["dotPixels"]


def _stack_secrets(place: MemoryPlace, link: str) -> dict[str, str]:
    """Every secret the demo stack holds, its passphrase, the gateway's device key."""
    workspace = _workspace(place)
    try:
        shown = workspace.run("config", "--show-secrets", "--json", "--stack", "sandbox")
        config = shown.expect_success().json
    finally:
        workspace.close()
    found: dict[str, str] = {}

    def leaves(label: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                leaves(f"{label}.{key}", item)
        elif isinstance(value, str):
            found[label] = value

    for key, entry in config.items():
        if entry.get("secret"):
            leaves(key, entry.get("objectValue", entry.get("value")))
    folder = _folder(place)
    found["passphrase"] = folder.passphrase_file.read_text()
    device = json.loads(
        (folder.gateway_root / "alice-agent" / "state" / "identity" / "device.json").read_text()
    )
    key_body = "".join(device["privateKeyPem"].splitlines()[1:-1])
    found["device private key"] = key_body
    found["gateway token"] = link.split("#token=", 1)[1]
    return found


def _recent_files(roots: list[Path], since: float) -> list[Path]:
    files = []
    for root in roots:
        if not root.exists():
            continue
        for path in root.rglob("*"):
            try:
                info = path.lstat()
            except OSError:
                continue
            if path.is_symlink() or not path.is_file():
                continue
            if info.st_mtime >= since - 1 and info.st_size <= MAX_SCANNED_BYTES:
                files.append(path)
    return files


def test_down_stops_every_process_and_leaves_no_secret_behind(
    memory_place: MemoryPlace, cold_up: ColdUp, oracle_dir: Path
) -> None:
    secrets = _stack_secrets(memory_place, cold_up.link)
    assert len(secrets) >= 9  # 3 master keys, mux key, 2 bot tokens, redpill, and ours
    state = _state(memory_place)
    processes = [
        Recorded(name, int(entry["pid"]), int(entry["started"]))
        for name, entry in state["services"].items()
    ]
    assert all(process.alive() for process in processes)

    run = run_sandbox("down", env=memory_place.env)

    assert run.returncode == 0, run.text
    assert not memory_place.sandbox_dir.exists()
    assert [p.name for p in processes if p.alive()] == []
    assert processes_with_env(f"{MARKER_VAR}={memory_place.sandbox_dir}") == []
    # The temp and state folders anything of the sandbox wrote to: memory, the system's
    # temp folder, the gateway's shared compile cache, the engine toolchain's cache.
    roots = [
        Path("/dev/shm"),
        Path(os.environ.get("TMPDIR", "/tmp")),
        oracle_dir / ".runtime-cache" / "tmp",
        Path.home() / ".cache" / "openclaw-phala" / "sandbox",
    ]
    hits = []
    for path in _recent_files(roots, cold_up.started):
        try:
            text = path.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue
        hits += scan_text(str(path), text, secrets)
    assert hits == []
    again = run_sandbox("down", env=memory_place.env)
    assert again.returncode == 0 and "nothing to stop" in again.text

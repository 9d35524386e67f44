"""What every sandbox command shares, and `status` and `down`.

Each process the sandbox starts is recorded in `sandbox.json` (folder.py) as soon as it
starts, with its start time, so `down` can stop it whatever happens next and never signals
a pid the system has since given to another process. `down` stops every recorded process,
then any process still carrying the folder's marker in its environment (an orphan of an
interrupted command), and removes the folder. `status` says what runs, runs `ops status`
and prints the dashboard link again. `up` is in up.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sandbox import demo, gateway, report
from sandbox.engine import REPO_ROOT, PulumiWorkspace, cached_toolchain, locate_engine
from sandbox.folder import SandboxFolder
from sandbox.plugins import PluginChoice
from sandbox.processes import Recorded, kill_processes_with_env
from sandbox.services import LocalCloudflare, LocalPhala

MARKER_VAR = "OPENCLAW_SANDBOX"  # in the environment of every process the sandbox starts
SERVICES = ("phala", "cloudflare")
# Set by scripts/sandbox once it has said which plugins run (before installing anything).
FIRST_LINE_SAID = "OPENCLAW_SANDBOX_FIRST_LINE_SAID"


class SandboxError(RuntimeError):
    """A failure the sandbox explains in one message."""


def cache_root(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME", "~")) / ".cache")
    return Path(base).expanduser() / "openclaw-phala" / "sandbox"


def workspace_stack_file(folder: SandboxFolder) -> Path:
    return folder.workspace / "project" / f"Pulumi.{demo.DEMO_STACK}.yaml"


def marker(folder: SandboxFolder) -> dict[str, str]:
    return {MARKER_VAR: str(folder.root)}


def recorded(state: Mapping[str, Any], name: str) -> Recorded | None:
    entry = (state.get("services") or {}).get(name)
    if not isinstance(entry, Mapping):
        return None
    return Recorded(name, int(entry["pid"]), int(entry["started"]))


def record_service(
    folder: SandboxFolder, name: str, process: Recorded, **details: Any
) -> dict[str, Any]:
    state = folder.read_state()
    state.setdefault("services", {})[name] = {
        "pid": process.pid,
        "started": process.started,
        **details,
    }
    folder.write_state(state)
    return state


def open_workspace(
    folder: SandboxFolder,
    engine_dir: Path,
    phala: LocalPhala,
    cloudflare: LocalCloudflare,
    choices: list[PluginChoice],
    environ: Mapping[str, str],
    *,
    poll_seconds: float,
) -> PulumiWorkspace:
    return PulumiWorkspace(
        engine_dir,
        folder.workspace,
        phala,
        cloudflare,
        extra_env={
            "OPENCLAW_PHALA_POLL_SECONDS": f"{poll_seconds:g}",
            # The driver's health checks reach each CVM's services at the local API
            # (emulators/phala/published.py); read by the driver only, never an input.
            "OPENCLAW_PHALA_HEALTH_URL_OVERRIDE": phala.health_url_template,
            # Only the plugins chosen here, never one that happens to be on PATH.
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
            **marker(folder),
        },
        passphrase_env={"PULUMI_CONFIG_PASSPHRASE_FILE": str(folder.passphrase_file)},
        toolchain=cached_toolchain(engine_dir, cache_root(environ)),
        providers=[choice.plugin for choice in choices],
    )


def read_outputs(workspace: PulumiWorkspace, stack: str) -> dict[str, Any]:
    """The stack's outputs, secrets shown (read through a pipe, kept in memory)."""
    shown = workspace.run("stack", "output", "--json", "--show-secrets", "--stack", stack)
    if shown.returncode != 0:
        raise SandboxError(f"pulumi stack output failed: {shown.stderr.strip()[-300:]}")
    outputs: dict[str, Any] = shown.json
    return outputs


def ops_status(workspace: PulumiWorkspace, stack: str) -> subprocess.CompletedProcess[str]:
    """`python -m ops status` as an operator runs it, against the local Phala API."""
    return subprocess.run(
        [sys.executable, "-m", "ops", "status", "--stack", stack],
        cwd=REPO_ROOT,
        env=workspace.environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def stop_everything(folder: SandboxFolder, state: Mapping[str, Any]) -> list[str]:
    """Every recorded process (the gateway first), then any orphan carrying the marker."""
    stopped = []
    for name in ("gateway", *SERVICES):
        process = recorded(state, name)
        if process is not None and process.alive():
            process.stop()
            stopped.append(f"{name} (pid {process.pid})")
    orphans = kill_processes_with_env(f"{MARKER_VAR}={folder.root}")
    if orphans:
        stopped.append(f"{len(orphans)} leftover process(es) {orphans}")
    return stopped


def down(folder: SandboxFolder, progress: report.Progress) -> int:
    if not folder.exists():
        progress.say(f"sandbox: nothing to stop (no folder at {folder.root})")
        return 0
    with folder.locked():
        stopped = stop_everything(folder, folder.read_state())
        shutil.rmtree(folder.root)
    progress.say(
        f"sandbox: stopped {', '.join(stopped) if stopped else 'nothing (nothing ran)'}; "
        f"removed {folder.root}"
    )
    return 0


def status(folder: SandboxFolder, environ: Mapping[str, str], progress: report.Progress) -> int:
    if not folder.exists():
        progress.say(f"sandbox: not running (no folder at {folder.root})")
        return 3
    with folder.locked():
        state = folder.read_state()
        progress.say(f"sandbox: {folder.root} (from {state.get('checkout')})")
        rows = [["PROCESS", "PID", "STATE", "WHERE"]]
        all_alive = True
        for name in (*SERVICES, "gateway"):
            process = recorded(state, name)
            details = (state.get("services") or {}).get(name) or {}
            alive = process is not None and process.alive()
            all_alive &= alive
            where = details.get("url") or (
                f"http://127.0.0.1:{details['port']}/ (tenant {details.get('tenant')})"
                if "port" in details
                else "-"
            )
            running = "running" if alive else "stopped"
            rows.append([name, str(process.pid) if process else "-", running, where])
        progress.lines(report.table(rows))
        if not state.get("complete"):
            progress.say("sandbox: not complete (an `up` is under way or failed)")
            return 1
        if not all_alive:
            progress.say("sandbox: something stopped; `./scripts/sandbox up` starts it again")
            return 1
        return _status_of_stack(folder, state, environ, progress)


def _status_of_stack(
    folder: SandboxFolder,
    state: Mapping[str, Any],
    environ: Mapping[str, str],
    progress: report.Progress,
) -> int:
    services = state["services"]
    # The workspace was prepared by `up` (its plugins installed): it is only opened.
    workspace = open_workspace(
        folder,
        locate_engine(),
        LocalPhala(services["phala"]["url"]),
        LocalCloudflare(services["cloudflare"]["url"]),
        [],
        environ,
        poll_seconds=demo.DEMO_POLL_SECONDS,
    )
    try:
        stack = str(state.get("stack", demo.DEMO_STACK))
        checked = ops_status(workspace, stack)
        progress.say("ops status:")
        for line in (checked.stdout + checked.stderr).splitlines():
            progress.tool_line(line)
        outputs = read_outputs(workspace, stack)
        tenant = services["gateway"]["tenant"]
        link = gateway.local_dashboard_link(
            outputs["tenantSecrets"][tenant]["dashboardUrl"], int(services["gateway"]["port"])
        )
        progress.say(f"dashboard of tenant {tenant}: {link}")
    finally:
        workspace.close()
    return 0 if checked.returncode == 0 else 1

"""`up`, `status` and `down`: the demo stack on local APIs, and the processes that serve it.

`up` (cold): make the private folder (folder.py), start the local Phala Cloud and
Cloudflare APIs (services.py), prepare the engine's workspace (engine.py), create the demo
stack with fresh secrets (demo.py), run the real `pulumi up`, print the outputs and
`ops status`, start one tenant's gateway (gateway.py) and print its dashboard link. Each
process is recorded in `sandbox.json` as soon as it starts, so `down` can stop it whatever
happens next; a failing `up` stops what it started itself.

`up` (warm: the folder exists and its APIs run): the same `pulumi up` again, which must
write nothing to either API (the request logs say so), and the same report; a gateway
that stopped is started again.

`down` stops every recorded process (checking it is still the process recorded), then any
process still carrying the folder's marker in its environment (an orphan of an
interrupted command), and removes the folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulators.request_log import read_json_lines
from sandbox import demo, gateway, report
from sandbox.engine import REPO_ROOT, PulumiWorkspace, cached_toolchain, locate_engine
from sandbox.folder import SandboxFolder
from sandbox.openclaw import free_port, locate_oracle
from sandbox.plugins import PluginChoice, choose_plugins, first_line
from sandbox.processes import Recorded, kill_processes_with_env
from sandbox.services import (
    LocalCloudflare,
    LocalPhala,
    is_write,
    start_cloudflare,
    start_phala,
)

MARKER_VAR = "OPENCLAW_SANDBOX"  # in the environment of every process the sandbox starts
SERVICES = ("phala", "cloudflare")
# Set by scripts/sandbox once it has said which plugins run (before installing anything).
FIRST_LINE_SAID = "OPENCLAW_SANDBOX_FIRST_LINE_SAID"
PULUMI_UP_TIMEOUT = 900.0


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


@dataclass
class Report:
    outputs: dict[str, Any]
    link: str | None


class Sandbox:
    """One sandbox folder and the commands on it."""

    def __init__(
        self, folder: SandboxFolder, environ: Mapping[str, str], progress: report.Progress
    ) -> None:
        self.folder = folder
        self.environ = environ
        self.progress = progress

    # ----- up ---------------------------------------------------------------------------

    def up(self, plugin_mode: str) -> int:
        choices = choose_plugins(self.environ, plugin_mode)
        if not self.environ.get(FIRST_LINE_SAID):
            self.progress.say(f"sandbox: {first_line(choices, self.environ)}")
        engine_dir = locate_engine()
        oracle_dir = locate_oracle()
        self.progress.say(
            f"sandbox: the real Pulumi engine ({engine_dir.name}), the deploy driver with the "
            "real phala CLI, OpenClaw from npm; everything on 127.0.0.1; state in "
            f"{self.folder.root}"
        )
        if self.folder.exists():
            with self.folder.locked():
                state = self.folder.read_state()
                checkout = state.get("checkout")
                if checkout and checkout != str(REPO_ROOT):
                    raise SandboxError(
                        f"the sandbox in {self.folder.root} was started from {checkout}: run "
                        "`./scripts/sandbox down` there (or here), or set OPENCLAW_SANDBOX_DIR "
                        "to another folder"
                    )
                if self._running(state):
                    return self._warm_up(state, choices, engine_dir, oracle_dir)
                self.progress.step("a sandbox was left half made or stopped: starting afresh")
                self._stop_everything(state)
                shutil.rmtree(self.folder.root)
        self.folder.create()
        with self.folder.locked():
            try:
                return self._cold_up(choices, engine_dir, oracle_dir)
            except BaseException:
                self.progress.step("up failed: stopping what it started")
                self._stop_everything(self.folder.read_state())
                self.progress.say(
                    f"sandbox: the logs are in {self.folder.logs}; "
                    "`./scripts/sandbox down` removes the folder"
                )
                raise

    def _running(self, state: Mapping[str, Any]) -> bool:
        if not state.get("complete"):
            return False
        for name in SERVICES:
            process = recorded(state, name)
            if process is None or not process.alive():
                return False
        return True

    def _cold_up(self, choices: list[PluginChoice], engine_dir: Path, oracle_dir: Path) -> int:
        folder = self.folder
        config = demo.example_config()
        self.folder.write_state(
            {
                "checkout": str(REPO_ROOT),
                "stack": demo.DEMO_STACK,
                "plugins": [
                    {"name": c.plugin.name, "version": c.plugin.version, "where": c.where}
                    for c in choices
                ],
                "services": {},
                "complete": False,
            }
        )
        home = folder.root / "home"
        home.mkdir(mode=0o700)
        timings = demo.DEMO_TIMINGS
        self.progress.step(
            f"starting the local Phala Cloud API (a CVM boots in {timings.boot:g} s, an "
            f"update restarts it over {timings.update:g} s, a delete takes {timings.delete:g} s)"
        )
        phala_process, phala = start_phala(
            timings, folder.request_log("phala"), logs=folder.logs, home=home, marker=marker(folder)
        )
        record_service(folder, "phala", phala_process, url=phala.api_prefix)
        self.progress.step(f"  Phala Cloud API: {phala.api_prefix}")
        cloudflare_process, cloudflare = start_cloudflare(
            str(config["cloudflareAccountId"]),
            folder.request_log("cloudflare"),
            logs=folder.logs,
            home=home,
            marker=marker(folder),
        )
        record_service(folder, "cloudflare", cloudflare_process, url=cloudflare.base_url)
        self.progress.step(f"  Cloudflare API:  {cloudflare.base_url}")

        self.progress.step("preparing the engine's workspace (plugins, the project's links)")
        workspace = open_workspace(
            folder,
            engine_dir,
            phala,
            cloudflare,
            choices,
            self.environ,
            poll_seconds=demo.DEMO_POLL_SECONDS,
        )
        try:
            stack = demo.DEMO_STACK
            self.progress.step(
                f"creating the demo stack '{stack}': the example's mux and "
                f"{len(config.get('tenants') or [])} tenants (Pulumi.prod.yaml), with fresh secrets"
            )
            workspace.init_stack(stack)
            workspace.write_plain_config(stack, config)
            for path, value in demo.fresh_secrets(config).items():
                workspace.set_secret(stack, path, value)
            self._pulumi_up(workspace, stack)
            result = self._report_and_gateway(workspace, stack, config, oracle_dir)
        finally:
            workspace.close()
        state = folder.read_state()
        state["complete"] = True
        folder.write_state(state)
        self._where(result)
        return 0

    def _warm_up(
        self,
        state: Mapping[str, Any],
        choices: list[PluginChoice],
        engine_dir: Path,
        oracle_dir: Path,
    ) -> int:
        services = state["services"]
        phala = LocalPhala(services["phala"]["url"])
        cloudflare = LocalCloudflare(services["cloudflare"]["url"])
        self.progress.step(
            f"the sandbox runs already (Phala {phala.api_prefix}); `pulumi up` again"
        )
        marks = {name: len(read_json_lines(self.folder.request_log(name))) for name in SERVICES}
        workspace = open_workspace(
            self.folder,
            engine_dir,
            phala,
            cloudflare,
            choices,
            self.environ,
            poll_seconds=demo.DEMO_POLL_SECONDS,
        )
        try:
            stack = str(state.get("stack", demo.DEMO_STACK))
            self._pulumi_up(workspace, stack)
            self._calls_since(marks, "what this `pulumi up` asked of the local APIs")
            result = self._report_and_gateway(workspace, stack, demo.example_config(), oracle_dir)
        finally:
            workspace.close()
        self._where(result)
        return 0

    def _pulumi_up(self, workspace: PulumiWorkspace, stack: str) -> None:
        self.progress.step(
            "pulumi up (the real engine; the driver deploys each CVM with the phala CLI)"
        )
        result = workspace.stream(
            "up",
            "--yes",
            "--skip-preview",
            "--suppress-outputs",
            "--color=never",
            "--stack",
            stack,
            on_line=self.progress.tool_line,
            timeout=PULUMI_UP_TIMEOUT,
        )
        if result.returncode != 0:
            raise SandboxError(f"pulumi up failed (exit {result.returncode}); see its output above")

    def _calls_since(self, marks: Mapping[str, int], title: str) -> None:
        self.progress.step(title)
        for name, label in (("phala", "Phala Cloud API"), ("cloudflare", "Cloudflare API")):
            entries = read_json_lines(self.folder.request_log(name), marks[name])
            writes = [is_write(name, entry) for entry in entries]
            self.progress.lines(report.calls_lines(f"  {label}", name, entries, writes))

    def _outputs(self, workspace: PulumiWorkspace, stack: str) -> dict[str, Any]:
        shown = workspace.run("stack", "output", "--json", "--show-secrets", "--stack", stack)
        if shown.returncode != 0:
            raise SandboxError(f"pulumi stack output failed: {shown.stderr.strip()[-300:]}")
        outputs: dict[str, Any] = shown.json
        return outputs

    def _report_and_gateway(
        self,
        workspace: PulumiWorkspace,
        stack: str,
        config: Mapping[str, Any],
        oracle_dir: Path,
    ) -> Report:
        outputs = self._outputs(workspace, stack)
        self.progress.step("the stack's outputs (`pulumi stack output`; tokens elided)")
        self.progress.lines(report.outputs_lines(outputs))
        self.progress.step("ops status (reads each CVM from the local Phala Cloud API)")
        status = subprocess.run(
            [sys.executable, "-m", "ops", "status", "--stack", stack],
            cwd=REPO_ROOT,
            env=workspace.environment(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        for line in (status.stdout + status.stderr).splitlines():
            self.progress.tool_line(line)
        link = self._gateway(workspace, stack, config, outputs, oracle_dir)
        return Report(outputs, link)

    def _gateway(
        self,
        workspace: PulumiWorkspace,
        stack: str,
        config: Mapping[str, Any],
        outputs: Mapping[str, Any],
        oracle_dir: Path,
    ) -> str:
        tenant = demo.gateway_tenant(config)
        secrets = outputs["tenantSecrets"][tenant]
        state = self.folder.read_state()
        running = recorded(state, "gateway")
        if running is not None and running.alive():
            port = int(state["services"]["gateway"]["port"])
            self.progress.step(
                f"tenant {tenant}'s OpenClaw gateway runs already (pid {running.pid})"
            )
        else:
            self.progress.step(
                f"starting tenant {tenant}'s OpenClaw gateway on 127.0.0.1 from its bootstrap "
                "config and derived keys (the first start compiles its plugins: up to a minute)"
            )
            root = self.folder.gateway_root / tenant
            if root.exists():
                shutil.rmtree(root)
            root.mkdir(parents=True, mode=0o700)
            port = free_port()
            try:
                process, _ = gateway.start_tenant_gateway(
                    oracle_dir,
                    root,
                    config=gateway.bootstrap_config(workspace, stack, tenant),
                    key=gateway.master_key(workspace, stack, tenant),
                    tenant_outputs=outputs["tenants"][tenant],
                    gateway_token=secrets["gatewayToken"],
                    port=port,
                )
            except RuntimeError as error:
                # The gateway's own log may quote its config: name it, do not print it.
                first = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise SandboxError(f"the gateway did not start ({first}); see {root}") from None
            record_service(
                self.folder, "gateway", Recorded.of("gateway", process), port=port, tenant=tenant
            )
        link = gateway.local_dashboard_link(secrets["dashboardUrl"], port)
        self.progress.step(f"tenant {tenant}'s dashboard (the Control UI, signed in by the link):")
        self.progress.say(f"  {link}")
        return link

    def _where(self, result: Report) -> None:
        folder = self.folder
        self.progress.say()
        self.progress.say(f"Where things live (one folder, in memory, mode 0700): {folder.root}")
        self.progress.lines(
            report.table(
                [
                    ["state", f"{folder.workspace / 'state'} (Pulumi's file backend)"],
                    [
                        "stack",
                        f"{workspace_stack_file(folder)} (secrets encrypted)",
                    ],
                    ["passphrase", f"{folder.passphrase_file} (PULUMI_CONFIG_PASSPHRASE_FILE)"],
                    ["logs", f"{folder.logs} (each API's calls: *-requests.jsonl)"],
                    ["gateway", f"{folder.gateway_root} (its config, key and log)"],
                ]
            )
        )
        self.progress.say("Stop everything and remove the folder: ./scripts/sandbox down")
        self.progress.say("What runs: ./scripts/sandbox status")

    # ----- status -----------------------------------------------------------------------

    def status(self) -> int:
        if not self.folder.exists():
            self.progress.say(f"sandbox: not running (no folder at {self.folder.root})")
            return 3
        with self.folder.locked():
            state = self.folder.read_state()
            self.progress.say(f"sandbox: {self.folder.root} (from {state.get('checkout')})")
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
                rows.append(
                    [
                        name,
                        str(process.pid) if process else "-",
                        "running" if alive else "stopped",
                        where,
                    ]
                )
            self.progress.lines(report.table(rows))
            if not state.get("complete"):
                self.progress.say("sandbox: not complete (an `up` is under way or failed)")
                return 1
            if not all_alive:
                self.progress.say(
                    "sandbox: something stopped; `./scripts/sandbox up` starts it again"
                )
                return 1
            return self._status_of_stack(state)

    def _status_of_stack(self, state: Mapping[str, Any]) -> int:
        services = state["services"]
        engine_dir = locate_engine()
        # The workspace was prepared by `up` (its plugins installed): it is only opened.
        workspace = open_workspace(
            self.folder,
            engine_dir,
            LocalPhala(services["phala"]["url"]),
            LocalCloudflare(services["cloudflare"]["url"]),
            [],
            self.environ,
            poll_seconds=demo.DEMO_POLL_SECONDS,
        )
        try:
            stack = str(state.get("stack", demo.DEMO_STACK))
            status = subprocess.run(
                [sys.executable, "-m", "ops", "status", "--stack", stack],
                cwd=REPO_ROOT,
                env=workspace.environment(),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            self.progress.say("ops status:")
            for line in (status.stdout + status.stderr).splitlines():
                self.progress.tool_line(line)
            outputs = self._outputs(workspace, stack)
            tenant = services["gateway"]["tenant"]
            link = gateway.local_dashboard_link(
                outputs["tenantSecrets"][tenant]["dashboardUrl"], int(services["gateway"]["port"])
            )
            self.progress.say(f"dashboard of tenant {tenant}: {link}")
        finally:
            workspace.close()
        return 0 if status.returncode == 0 else 1

    # ----- down -------------------------------------------------------------------------

    def down(self) -> int:
        if not self.folder.exists():
            self.progress.say(f"sandbox: nothing to stop (no folder at {self.folder.root})")
            return 0
        with self.folder.locked():
            stopped = self._stop_everything(self.folder.read_state())
            shutil.rmtree(self.folder.root)
        self.progress.say(
            f"sandbox: stopped {', '.join(stopped) if stopped else 'nothing (nothing ran)'}; "
            f"removed {self.folder.root}"
        )
        return 0

    def _stop_everything(self, state: Mapping[str, Any]) -> list[str]:
        """Every recorded process (gateway first), then any orphan carrying the marker."""
        stopped = []
        for name in ("gateway", *SERVICES):
            process = recorded(state, name)
            if process is not None and process.alive():
                process.stop()
                stopped.append(f"{name} (pid {process.pid})")
        orphans = kill_processes_with_env(f"{MARKER_VAR}={self.folder.root}")
        if orphans:
            stopped.append(f"{len(orphans)} leftover process(es) {orphans}")
        return stopped


def caller_environment() -> dict[str, str]:
    return dict(os.environ)

"""`up`: the demo stack on local APIs, and one tenant's gateway.

Cold (no sandbox folder yet): make the private folder (folder.py), start the local Phala
Cloud and Cloudflare APIs (services.py), prepare the engine's workspace (engine.py), create
the demo stack with fresh secrets (demo.py), run the real `pulumi up`, print the outputs and
`ops status`, start one tenant's gateway (gateway.py) and print its dashboard link. Each
process is recorded as soon as it starts; a failing or interrupted `up` stops what it
started itself (its logs stay until `down`).

Warm (the folder exists and its APIs run): the same `pulumi up` again, which must write
nothing to either API (the request logs say so), and the same report; a gateway that
stopped is started again.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulators.request_log import read_json_lines
from sandbox import demo, gateway, report
from sandbox.engine import REPO_ROOT, PulumiWorkspace, locate_engine
from sandbox.folder import SandboxFolder
from sandbox.lifecycle import (
    FIRST_LINE_SAID,
    SERVICES,
    SandboxError,
    marker,
    open_workspace,
    ops_status,
    read_outputs,
    record_service,
    recorded,
    stop_everything,
    workspace_stack_file,
)
from sandbox.openclaw import free_port, locate_oracle
from sandbox.plugins import PluginChoice, choose_plugins, first_line
from sandbox.processes import Recorded
from sandbox.services import LocalCloudflare, LocalPhala, is_write, start_cloudflare, start_phala

PULUMI_UP_TIMEOUT = 900.0


class Up:
    """`up` on one sandbox folder."""

    def __init__(
        self, folder: SandboxFolder, environ: Mapping[str, str], progress: report.Progress
    ) -> None:
        self.folder = folder
        self.environ = environ
        self.progress = progress

    def run(self, plugin_mode: str) -> int:
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
                stop_everything(self.folder, state)
                shutil.rmtree(self.folder.root)
        try:
            self.folder.create()
        except FileExistsError:
            raise SandboxError(
                f"another sandbox command is making {self.folder.root} now: run `up` again"
            ) from None
        with self.folder.locked():
            try:
                return self._cold_up(choices, engine_dir, oracle_dir)
            except BaseException:
                self.progress.step("up failed: stopping what it started")
                stop_everything(self.folder, self.folder.read_state())
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
            self._report_and_gateway(workspace, stack, config, oracle_dir)
        finally:
            workspace.close()
        state = folder.read_state()
        state["complete"] = True
        folder.write_state(state)
        self._where()
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
            self._report_and_gateway(workspace, stack, demo.example_config(), oracle_dir)
        finally:
            workspace.close()
        self._where()
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

    def _report_and_gateway(
        self,
        workspace: PulumiWorkspace,
        stack: str,
        config: Mapping[str, Any],
        oracle_dir: Path,
    ) -> None:
        outputs = read_outputs(workspace, stack)
        self.progress.step("the stack's outputs (`pulumi stack output`; tokens elided)")
        self.progress.lines(report.outputs_lines(outputs))
        self.progress.step("ops status (reads each CVM from the local Phala Cloud API)")
        status = ops_status(workspace, stack)
        for line in (status.stdout + status.stderr).splitlines():
            self.progress.tool_line(line)
        self._gateway(workspace, stack, config, outputs, oracle_dir)

    def _gateway(
        self,
        workspace: PulumiWorkspace,
        stack: str,
        config: Mapping[str, Any],
        outputs: Mapping[str, Any],
        oracle_dir: Path,
    ) -> None:
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

    def _where(self) -> None:
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

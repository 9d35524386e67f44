"""`rehearse --stack <name>`: an operator's stack and the change they are about to make,
deployed end to end into local APIs: through the real engine, the deploy driver and the
real phala CLI, and the cloudflare provider.

1. The stack as it runs today is built in fresh local APIs from its base: by default the
   stack file at the checkout's HEAD, with the program at HEAD (`--base REF` for another
   ref; `--base-file FILE` for a stack file with this checkout's program; `--from-empty` to
   start from nothing). The emulators cannot adopt the real CVM ids of a production
   state, so the base is deployed anew rather than imported.
2. The change (the working tree's `Pulumi.<stack>.yaml`, or `--stack-file`) is previewed:
   each resource's operation in the engine's own words, then applied with `pulumi up`.
3. What the change did: the driver's calls to the Phala Cloud API and the provider's calls
   to the Cloudflare API (from the emulators' request logs), and the outputs after.

The operator's secrets stay theirs: the stack file is used with its own secrets provider
(passphrase only: stack_files.py), the passphrase comes from their environment and goes to
the engine alone. Nothing reaches a vendor (vendor_guard.py). Everything lives in a
private memory-backed folder of its own, removed at the end with every process it started.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulators.request_log import read_json_lines
from sandbox import report
from sandbox.engine import REPO_ROOT, PulumiWorkspace, cached_toolchain, link_project, locate_engine
from sandbox.folder import SandboxFolder, check_memory_backed, default_location, write_private
from sandbox.lifecycle import FIRST_LINE_SAID, MARKER_VAR, SandboxError, cache_root
from sandbox.plugins import choose_plugins, first_line
from sandbox.processes import Recorded, kill_processes_with_env
from sandbox.services import PhalaTimings, is_write, start_cloudflare, start_phala
from sandbox.stack_files import (
    PASSPHRASE_VARS,
    StackFileError,
    parse_stack_document,
    read_stack_document,
    rehearsal_copy,
    secrets_provider_problem,
)

# Short, in the order the real service goes through: a rehearsal is about the calls.
REHEARSAL_TIMINGS = PhalaTimings(boot=1.0, update=2.0, delete=1.0)
REHEARSAL_POLL_SECONDS = 0.25
DEFAULT_ACCOUNT_ID = "0" * 32
UP_TIMEOUT = 900.0


@dataclass(frozen=True)
class Base:
    """Where the stack as it runs today comes from."""

    kind: str  # "ref", "file" or "empty"
    label: str
    ref: str | None = None
    document: Mapping[str, Any] | None = None


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, check=False)


def stack_file_at(ref: str, name: str) -> bytes | None:
    shown = _git("show", f"{ref}:{name}")
    return shown.stdout if shown.returncode == 0 else None


def export_tree(ref: str, destination: Path) -> Path:
    """The git ref's tree in `destination`, with this checkout's venv and node_modules."""
    archive = destination.with_suffix(".tar")
    made = _git("archive", "--format=tar", "-o", str(archive), ref)
    if made.returncode != 0:
        raise SandboxError(f"cannot read git ref {ref!r}: {made.stderr.decode().strip()[-200:]}")
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    archive.unlink()
    for installed in (".venv", "node_modules"):
        if (REPO_ROOT / installed).exists() and not (destination / installed).exists():
            (destination / installed).symlink_to(REPO_ROOT / installed)
    return destination


class Rehearsal:
    def __init__(
        self,
        stack: str,
        change_path: Path,
        base: Base,
        environ: Mapping[str, str],
        progress: report.Progress,
    ) -> None:
        self.stack = stack.rsplit("/", 1)[-1]
        self.change_path = change_path
        self.base = base
        self.environ = environ
        self.progress = progress

    def run(self, plugin_mode: str) -> int:
        change = read_stack_document(self.change_path)
        for label, document in (
            (str(self.change_path), change),
            (self.base.label, self.base.document or {}),
        ):
            problem = secrets_provider_problem(label, document, self.environ)
            if problem:
                raise StackFileError(problem)
        choices = choose_plugins(self.environ, plugin_mode)
        if not self.environ.get(FIRST_LINE_SAID):
            self.progress.say(f"sandbox: {first_line(choices, self.environ)}")
        engine_dir = locate_engine()
        folder = SandboxFolder(
            default_location(self.environ).parent
            / f"openclaw-phala-rehearse-{secrets.token_hex(4)}"
        )
        check_memory_backed(folder.root.parent)
        self.progress.say(
            f"sandbox rehearse: stack {self.stack}: {self.base.label}, then "
            f"{self.change_path}; everything on 127.0.0.1, in {folder.root}"
        )
        folder.root.mkdir(mode=0o700)
        started: list[Recorded] = []
        workspace: PulumiWorkspace | None = None
        try:
            folder.logs.mkdir(mode=0o700)
            home = folder.root / "home"
            home.mkdir(mode=0o700)
            mark = {MARKER_VAR: str(folder.root)}
            self.progress.step("starting the local Phala Cloud and Cloudflare APIs")
            phala_process, phala = start_phala(
                REHEARSAL_TIMINGS,
                folder.request_log("phala"),
                logs=folder.logs,
                home=home,
                marker=mark,
            )
            started.append(phala_process)
            account = str(
                (change.get("config") or {}).get("openclaw-phala:cloudflareAccountId")
                or DEFAULT_ACCOUNT_ID
            )
            cloudflare_process, cloudflare = start_cloudflare(
                account, folder.request_log("cloudflare"), logs=folder.logs, home=home, marker=mark
            )
            started.append(cloudflare_process)
            workspace = PulumiWorkspace(
                engine_dir,
                folder.workspace,
                phala,
                cloudflare,
                extra_env={
                    "OPENCLAW_PHALA_POLL_SECONDS": f"{REHEARSAL_POLL_SECONDS:g}",
                    "OPENCLAW_PHALA_HEALTH_URL_OVERRIDE": phala.health_url_template,
                    "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
                    **mark,
                },
                passphrase_env=self._passphrase_env(folder, change),
                toolchain=cached_toolchain(engine_dir, cache_root(self.environ)),
                providers=[choice.plugin for choice in choices],
            )
            return self._rehearse(workspace, folder, change)
        finally:
            if workspace is not None:
                workspace.close()
            for process in started:
                process.stop()
            kill_processes_with_env(f"{MARKER_VAR}={folder.root}")
            shutil.rmtree(folder.root, ignore_errors=True)

    def _passphrase_env(self, folder: SandboxFolder, change: Mapping[str, Any]) -> dict[str, str]:
        given = {name: self.environ[name] for name in PASSPHRASE_VARS if self.environ.get(name)}
        if given:
            return given
        # A stack without secrets yet: a throwaway passphrase for the rehearsal's copy.
        write_private(folder.passphrase_file, secrets.token_urlsafe(32))
        return {"PULUMI_CONFIG_PASSPHRASE_FILE": str(folder.passphrase_file)}

    def _write_stack_file(self, project: Path, document: Mapping[str, Any], label: str) -> None:
        text, dropped = rehearsal_copy(document)
        if dropped:
            self.progress.step(
                f"left out of {label}'s copy: {', '.join(dropped)} (the local API's endpoint and "
                "token are used instead)"
            )
        path = project / f"Pulumi.{self.stack}.yaml"
        path.unlink(missing_ok=True)
        write_private(path, text)

    def _rehearse(
        self, workspace: PulumiWorkspace, folder: SandboxFolder, change: Mapping[str, Any]
    ) -> int:
        if self.base.kind != "empty":
            assert self.base.document is not None
            project = workspace.project_dir
            if self.base.kind == "ref":
                assert self.base.ref is not None
                tree = export_tree(self.base.ref, folder.root / "base-tree")
                project = link_project(folder.root / "base-project", tree)
            self._write_stack_file(project, self.base.document, self.base.label)
            workspace.run(
                "stack", "init", self.stack, "--non-interactive", cwd=project
            ).expect_success()
            self.progress.step(f"deploying the stack as it runs today ({self.base.label})")
            self._up(workspace, project)
            self._write_stack_file(workspace.project_dir, change, str(self.change_path))
        else:
            self._write_stack_file(workspace.project_dir, change, str(self.change_path))
            workspace.run("stack", "init", self.stack, "--non-interactive").expect_success()
        marks = {
            name: len(read_json_lines(folder.request_log(name))) for name in ("phala", "cloudflare")
        }
        before = self._outputs(workspace)

        self.progress.step(
            f"the change, as the real `pulumi preview` shows it ({self.change_path}):"
        )
        preview = workspace.stream(
            "preview",
            "--suppress-outputs",
            "--color=never",
            "--stack",
            self.stack,
            on_line=self._preview_line,
            timeout=UP_TIMEOUT,
        )
        if preview.returncode != 0:
            self.progress.say("  the preview refused the change (above): nothing was applied")
            return 1

        self.progress.step("applying it: pulumi up")
        self._up(workspace, workspace.project_dir)

        self.progress.step("what the change asked of the local APIs")
        for name, label in (
            ("phala", "Phala Cloud API (the deploy driver, through the phala CLI)"),
            ("cloudflare", "Cloudflare API (the cloudflare provider)"),
        ):
            entries = read_json_lines(folder.request_log(name), marks[name])
            writes = [is_write(name, entry) for entry in entries]
            self.progress.lines(report.calls_lines(f"  {label}", name, entries, writes))

        after = self._outputs(workspace)
        self.progress.step("the outputs after (`pulumi stack output`; secret ones not shown)")
        self.progress.lines(report.outputs_lines(after))
        self.progress.say("  changed by it:")
        self.progress.lines(["  " + line for line in report.output_changes(before, after)])
        return 0

    def _outputs(self, workspace: PulumiWorkspace) -> dict[str, Any]:
        shown = workspace.run("stack", "output", "--json", "--stack", self.stack)
        if shown.returncode != 0:
            return {}  # a stack deployed from nothing has no outputs yet
        outputs: dict[str, Any] = shown.json
        return outputs

    def _up(self, workspace: PulumiWorkspace, project: Path) -> None:
        result = workspace.stream(
            "up",
            "--yes",
            "--skip-preview",
            "--suppress-outputs",
            "--color=never",
            "--stack",
            self.stack,
            on_line=self.progress.tool_line,
            timeout=UP_TIMEOUT,
            cwd=project,
        )
        if result.returncode != 0:
            raise SandboxError(f"pulumi up failed (exit {result.returncode}); see its output above")

    def _preview_line(self, line: str) -> None:
        if not line.startswith("@ "):  # the engine's progress dots, not a result
            self.progress.tool_line(line)


def choose_base(
    stack: str,
    change_path: Path,
    *,
    ref: str | None,
    base_file: Path | None,
    from_empty: bool,
) -> Base:
    """The base the options name; by default the stack file at HEAD when git has it."""
    short = stack.rsplit("/", 1)[-1]
    name = f"Pulumi.{short}.yaml"
    if from_empty:
        return Base("empty", "from nothing")
    if base_file is not None:
        return Base("file", f"base {base_file}", document=read_stack_document(base_file))
    wanted = ref or "HEAD"
    data = stack_file_at(wanted, name)
    if data is None:
        if ref is not None:
            raise StackFileError(f"git ref {ref!r} has no {name}")
        return Base("empty", f"from nothing (git's HEAD has no {name})")
    return Base(
        "ref",
        f"{name} and the program at git {wanted}",
        ref=wanted,
        document=parse_stack_document(data, f"{name} at {wanted}"),
    )


def rehearse(
    stack: str,
    *,
    stack_file: Path | None,
    ref: str | None,
    base_file: Path | None,
    from_empty: bool,
    plugin_mode: str,
    environ: Mapping[str, str],
    progress: report.Progress,
) -> int:
    short = stack.rsplit("/", 1)[-1]
    change_path = stack_file or REPO_ROOT / f"Pulumi.{short}.yaml"
    base = choose_base(stack, change_path, ref=ref, base_file=base_file, from_empty=from_empty)
    return Rehearsal(stack, change_path, base, environ, progress).run(plugin_mode)


__all__: Sequence[str] = ("choose_base", "rehearse")

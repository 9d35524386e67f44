"""The real Pulumi engine, run offline for tests.

Each `PulumiWorkspace` is one operator's world, isolated from the developer's own:
- the `pulumi` CLI that `scripts/engine` built from Go modules (v3.274.0);
- a private `PULUMI_HOME`, a `file://` backend (or the `backend_url` given, e.g. an
  `s3://` bucket: tests/support/r2_state.py) and a passphrase secrets provider;
- `PULUMI_SKIP_UPDATE_CHECK` and `PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION`, so the
  engine never reaches for the network;
- the plugins: the language host bundled beside `pulumi` with the real executor script,
  and the command and cloudflare providers installed into the plugin cache with
  `pulumi plugin install --file` (see `standins/` for why these
  three are stand-ins);
- the project in a folder of its own (links to this checkout's files, so stack files
  written by `pulumi config set` never touch the checkout, and the checkout path is
  not the one the engine sees);
- the Phala Cloud API emulator, wired to the deploy driver through the environment
  the engine passes on to the command provider, and optionally the Cloudflare API
  emulator, wired to the cloudflare provider by `CLOUDFLARE_BASE_URL`.

`run()` starts each `pulumi` in a new process group with a timeout, and kills the
group on timeout or when the workspace closes, so no process outlives a test.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emulators.cloudflare import CloudflareEmulator
from emulators.phala import PhalaCloudEmulator

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE_SCRIPT = REPO_ROOT / "scripts" / "engine"
ENGINE_DIR_VAR = "OPENCLAW_ENGINE_DIR"  # use this engine folder instead of scripts/engine
PROJECT = "openclaw-phala"
PASSPHRASE = "engine-tests-passphrase"
STANDIN_DIR = REPO_ROOT / "standins"
DEFAULT_TIMEOUT_SECONDS = 300.0
# (name, version, stand-in script): the versions the pinned Python SDKs ask for.
PROVIDERS = (
    ("command", "1.2.1", "command_provider.py"),
    ("cloudflare", "6.17.0", "cloudflare_provider.py"),
)
# Checkout entries that are not part of the project as the engine sees it.
_NOT_LINKED = {
    ".git",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "plan-out",
    "tests",
    "__pycache__",
}


class EngineUnavailableError(RuntimeError):
    """The engine is not built; the message says how to get it."""


def locate_engine() -> Path:
    """The folder holding the pinned `pulumi`, without building anything."""
    override = os.environ.get(ENGINE_DIR_VAR)
    if override:
        folder = Path(override)
        if not (folder / "pulumi").is_file():
            raise EngineUnavailableError(f"{ENGINE_DIR_VAR}={override} has no pulumi binary")
        return folder
    check = subprocess.run(
        [str(ENGINE_SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        raise EngineUnavailableError(
            "the pinned Pulumi engine is not built: run scripts/engine (needs Go and the "
            "Go module proxy; ./scripts/test does it first)"
        )
    return Path(check.stdout.strip())


@dataclass(frozen=True)
class PulumiResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def expect_success(self) -> PulumiResult:
        if self.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(self.args)} exited {self.returncode}\n"
                f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
            )
        return self


def _write_launcher(path: Path, script: Path, pass_own_path: bool) -> None:
    own = ' "$0"' if pass_own_path else ""
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}"{own} "$@"\n')
    path.chmod(0o755)


def _link_or_copy(source: Path, destination: Path) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


@functools.cache
def bundled_toolchain(engine_dir: Path) -> Path:
    """`pulumi` with the language host bundled beside it, once per test session.

    Bundled, the engine takes the language host without an "ambient plugin" warning; the
    folder is shared by every workspace (the binary is large) and removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="openclaw-engine-bin-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    _link_or_copy(engine_dir / "pulumi", folder / "pulumi")
    shutil.copy2(engine_dir / "pulumi-language-python-exec", folder / "pulumi-language-python-exec")
    _write_launcher(folder / "pulumi-language-python", STANDIN_DIR / "language_host.py", True)
    return folder


def link_project(destination: Path) -> Path:
    """The project as a folder of links to this checkout, without its stack files."""
    destination.mkdir(parents=True)
    for entry in REPO_ROOT.iterdir():
        if entry.name in _NOT_LINKED or (
            entry.name.startswith("Pulumi.") and entry.name != "Pulumi.yaml"
        ):
            continue
        (destination / entry.name).symlink_to(entry)
    return destination


@dataclass
class PulumiWorkspace:
    engine_dir: Path
    root: Path
    emulator: PhalaCloudEmulator
    cloudflare: CloudflareEmulator | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    backend_url: str | None = None  # None: a file:// folder of the workspace's own
    _running: list[subprocess.Popen[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.project_dir = link_project(self.root / "project")
        self.pulumi_home = self.root / "pulumi-home"
        self.backend_dir = self.root / "state"
        self.bin_dir = bundled_toolchain(self.engine_dir)
        self.home = self.root / "home"
        self.tmpdir = self.root / "tmp"
        for folder in (self.pulumi_home, self.backend_dir, self.home, self.tmpdir):
            folder.mkdir(parents=True, exist_ok=True)
        # Providers go into the plugin cache the documented offline way.
        launchers = self.root / "plugin-launchers"
        launchers.mkdir()
        for name, version, script in PROVIDERS:
            launcher = launchers / f"pulumi-resource-{name}"
            _write_launcher(launcher, STANDIN_DIR / script, False)
            self.run(
                "plugin", "install", "resource", name, version, "--file", str(launcher)
            ).expect_success()

    # ----- environment --------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        env = self.emulator.cli_env(self.home)
        env.update(
            {
                "PATH": os.pathsep.join([str(self.bin_dir), env["PATH"]]),
                "TMPDIR": str(self.tmpdir),
                "PULUMI_HOME": str(self.pulumi_home),
                "PULUMI_BACKEND_URL": self.backend_url or self.backend_dir.as_uri(),
                "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
                "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
                "PULUMI_SUPPRESS_COPILOT_LINK": "true",
                "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
                "OPENCLAW_PHALA_POLL_SECONDS": "0.05",
            }
        )
        if self.cloudflare is not None:
            env["CLOUDFLARE_BASE_URL"] = self.cloudflare.base_url
            env["CLOUDFLARE_API_TOKEN"] = self.cloudflare.api_token
            env["OPENCLAW_CF_STANDIN_BACKOFF_SCALE"] = "0.01"
        env.update(self.extra_env)
        return env

    # ----- running pulumi -----------------------------------------------------------

    def start(
        self, *args: str, stdin: str | None = None, cwd: Path | None = None
    ) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [str(self.bin_dir / "pulumi"), *args],
            cwd=cwd or self.project_dir,
            env=self.environment(),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self._running.append(process)
        return process

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        cwd: Path | None = None,
    ) -> PulumiResult:
        started = time.monotonic()
        process = self.start(*args, stdin=stdin, cwd=cwd)
        try:
            stdout, stderr = process.communicate(input=stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process)
            stdout, stderr = process.communicate()
            raise AssertionError(
                f"pulumi {' '.join(args)} did not finish in {timeout:.0f}s\n{stdout}\n{stderr}"
            ) from None
        finally:
            if process in self._running:
                self._running.remove(process)
        return PulumiResult(
            tuple(args), process.returncode, stdout, stderr, time.monotonic() - started
        )

    def close(self) -> None:
        for process in list(self._running):
            kill_group(process)
        self._running.clear()
        # Anything still carrying this workspace's PULUMI_HOME is an orphan of a run that
        # was killed or ended early (a plugin outliving its engine): stop it too.
        kill_processes_with_env(f"PULUMI_HOME={self.pulumi_home}")

    # ----- stacks and config --------------------------------------------------------

    def stack_file(self, stack: str) -> Path:
        return self.project_dir / f"Pulumi.{stack.rsplit('/', 1)[-1]}.yaml"

    def init_stack(self, stack: str) -> None:
        self.run("stack", "init", stack, "--non-interactive").expect_success()

    def write_plain_config(self, stack: str, config: Mapping[str, Any]) -> None:
        """Plain (non-secret) config, written into the stack file as an operator would."""
        path = self.stack_file(stack)
        document = yaml.safe_load(path.read_text()) if path.exists() else None
        document = document or {}
        values = document.setdefault("config", {})
        for key, value in config.items():
            values[f"{PROJECT}:{key}"] = value
        path.write_text(yaml.safe_dump(document, sort_keys=True))

    def set_config(self, stack: str, path: str, value: str, *, secret: bool = False) -> None:
        """`pulumi config set --path`; a secret goes on stdin (never argv), as documented."""
        args = ["config", "set", "--path", "--stack", stack, f"{PROJECT}:{path}"]
        if secret:
            self.run(*args, "--secret", stdin=value).expect_success()
        else:
            self.run(*args, "--", value).expect_success()

    def remove_config(self, stack: str, path: str) -> None:
        self.run("config", "rm", "--path", "--stack", stack, f"{PROJECT}:{path}").expect_success()

    def set_secret(self, stack: str, path: str, value: str) -> None:
        self.set_config(stack, path, value, secret=True)

    def configure(self, stack: str, config: Mapping[str, Any], secret_keys: Sequence[str]) -> None:
        """Plain keys into the stack file; every leaf of a secret key through the CLI."""
        self.write_plain_config(stack, {k: v for k, v in config.items() if k not in secret_keys})
        for key in secret_keys:
            for path, value in _leaves(key, config[key]):
                self.set_secret(stack, path, value)


def _leaves(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(f"{prefix}.{k}", v)]
    return [(prefix, str(value))]


def kill_group(process: subprocess.Popen[str]) -> None:
    """Stop a `pulumi` and everything it started (plugins, the program, the driver).

    Pulumi starts each plugin in a process group of its own (cmdutil.RegisterProcessGroup),
    so killing pulumi's group alone would orphan the plugins and what they run: the tree
    is read first, then every group in it is killed.
    """
    if process.poll() is None:
        groups = {process.pid}
        for pid in _descendants(process.pid):
            with contextlib.suppress(ProcessLookupError):
                groups.add(os.getpgid(pid))
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
    process.wait(timeout=30)


def _process_table() -> dict[int, int]:
    """pid -> parent pid, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields follow the last ")".
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in _process_table().items():
        children.setdefault(parent, []).append(pid)
    found: list[int] = []
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def kill_processes_with_env(marker: str) -> list[int]:
    """Kill every process whose environment holds `marker` (a `NAME=value` line): what a
    workspace's runs left behind, orphans included. Returns the pids killed."""
    needle = marker.encode() + b"\0"
    killed: list[int] = []
    for pid in _process_table():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes() + b"\0"
        except OSError:
            continue
        if needle in environ:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed

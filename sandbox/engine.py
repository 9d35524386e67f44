"""The real Pulumi engine, run offline, in a world of its own.

Each `PulumiWorkspace` is one operator's world, isolated from the caller's own:
- the `pulumi` CLI that `scripts/engine` built from Go modules (v3.274.0), with the
  language host bundled beside it (`toolchain`);
- a private `PULUMI_HOME`, a `file://` backend (or the `backend_url` given, e.g. an
  `s3://` bucket) and a passphrase secrets provider (`passphrase_env`: the passphrase
  itself, or `PULUMI_CONFIG_PASSPHRASE_FILE`);
- `PULUMI_SKIP_UPDATE_CHECK` and `PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION`, so the
  engine never reaches for the network;
- the provider plugins in the private plugin cache: each a stand-in from `standins/`,
  installed with `pulumi plugin install --file` (see standins/FIDELITY.md for why), or the
  real plugin found in the operator's own plugin cache or on PATH, linked in (`providers`);
- the project in a folder of its own (links to this checkout's files, so stack files
  written by `pulumi config set` never touch the checkout, and the checkout path is
  not the one the engine sees);
- the Phala Cloud API, wired to the deploy driver through the environment the engine
  passes on to the command provider, and optionally the Cloudflare API, wired to the
  cloudflare provider by `CLOUDFLARE_BASE_URL` (the emulators, in this process or in
  processes of their own: anything with `cli_env`, and `base_url` and `api_token`).

`run()` starts each `pulumi` in a new process group with a timeout, and kills the
group on timeout or when the workspace closes, so no process outlives its caller.
A workspace is prepared once (`root/.prepared`); opening the same root again reuses it.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from sandbox.plugins import STANDIN_PROVIDERS, ProviderPlugin
from sandbox.processes import kill_group, kill_processes_with_env

REPO_ROOT = Path(__file__).resolve().parents[1]
ENGINE_SCRIPT = REPO_ROOT / "scripts" / "engine"
ENGINE_DIR_VAR = "OPENCLAW_ENGINE_DIR"  # use this engine folder instead of scripts/engine
PROJECT = "openclaw-phala"
PASSPHRASE = "engine-tests-passphrase"  # noqa: S105 - the tests' throwaway stacks
STANDIN_DIR = REPO_ROOT / "standins"
DEFAULT_TIMEOUT_SECONDS = 300.0
# How `pulumi stack export --show-secrets` marks a secret value (its "plaintext" is JSON).
SECRET_SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"  # noqa: S105 - a marker
# Checkout entries that are not part of the project as the engine sees it.
_NOT_LINKED = {
    ".git",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "plan-out",
    "test-artifacts",
    "tests",
    "__pycache__",
}
_PREPARED = ".prepared"


class PhalaEndpoint(Protocol):
    def cli_env(self, home: Path | str) -> dict[str, str]: ...


class CloudflareEndpoint(Protocol):
    @property
    def base_url(self) -> str: ...

    @property
    def api_token(self) -> str: ...


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


def write_launcher(path: Path, script: Path, pass_own_path: bool) -> None:
    own = ' "$0"' if pass_own_path else ""
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}"{own} "$@"\n')
    path.chmod(0o755)


def _link_or_copy(source: Path, destination: Path) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def make_toolchain(engine_dir: Path, folder: Path, *, link: Callable[[Path, Path], None]) -> Path:
    """`pulumi` (placed by `link`) with the language host bundled beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    link(engine_dir / "pulumi", folder / "pulumi")
    shutil.copy2(engine_dir / "pulumi-language-python-exec", folder / "pulumi-language-python-exec")
    write_launcher(folder / "pulumi-language-python", STANDIN_DIR / "language_host.py", True)
    return folder


@functools.cache
def bundled_toolchain(engine_dir: Path) -> Path:
    """The toolchain, once per test session, in a temp folder removed at exit.

    Bundled, the engine takes the language host without an "ambient plugin" warning; the
    folder is shared by every workspace (the binary is large, so it is hard-linked)."""
    folder = Path(tempfile.mkdtemp(prefix="openclaw-engine-bin-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return make_toolchain(engine_dir, folder, link=_link_or_copy)


def cached_toolchain(engine_dir: Path, cache_root: Path) -> Path:
    """The toolchain in a cache folder kept between commands (the sandbox's), one per
    engine, Python and checkout (the language host's launcher names the last two).

    Not in the sandbox's memory-backed folder: the engine finds a bundled plugin beside
    its own resolved path, so `pulumi` cannot be a symlink there, and a copy would hold
    ~170 MB of memory; a hard link next to the engine's own cache costs nothing. It holds
    nothing secret."""
    key = hashlib.sha256(
        "\0".join((str(engine_dir.resolve()), sys.executable, str(REPO_ROOT))).encode()
    ).hexdigest()[:16]
    folder = cache_root / f"toolchain-{key}"
    if (folder / "pulumi-language-python").exists():
        return folder
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".toolchain-", dir=cache_root))
    make_toolchain(engine_dir, staging, link=_link_or_copy)
    try:
        staging.rename(folder)
    except OSError:  # another command made it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def link_project(destination: Path, source: Path = REPO_ROOT) -> Path:
    """The project as a folder of links to a checkout, without its stack files."""
    destination.mkdir(parents=True)
    for entry in source.iterdir():
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
    emulator: PhalaEndpoint
    cloudflare: CloudflareEndpoint | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    backend_url: str | None = None  # None: a file:// folder of the workspace's own
    passphrase_env: dict[str, str] = field(
        default_factory=lambda: {"PULUMI_CONFIG_PASSPHRASE": PASSPHRASE}
    )
    toolchain: Path | None = None  # None: bundled_toolchain(engine_dir)
    providers: Sequence[ProviderPlugin] = STANDIN_PROVIDERS
    project_source: Path = REPO_ROOT  # the checkout (or a git ref's tree) to link
    _running: list[subprocess.Popen[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.project_dir = self.root / "project"
        self.pulumi_home = self.root / "pulumi-home"
        self.backend_dir = self.root / "state"
        self.bin_dir = self.toolchain or bundled_toolchain(self.engine_dir)
        self.home = self.root / "home"
        self.tmpdir = self.root / "tmp"
        if not (self.root / _PREPARED).exists():
            self._prepare()

    def _prepare(self) -> None:
        link_project(self.project_dir, self.project_source)
        for folder in (self.pulumi_home, self.backend_dir, self.home, self.tmpdir):
            folder.mkdir(parents=True, exist_ok=True)
        self._install_plugins(self.pulumi_home / "plugins")
        (self.root / _PREPARED).touch()

    def _install_plugins(self, plugins: Path) -> None:
        # Providers go into the plugin cache the documented offline way.
        launchers = self.root / "plugin-launchers"
        launchers.mkdir()
        for plugin in self.providers:
            if plugin.real is not None:
                # The real binary, linked into a cache entry of its own (not copied: the
                # real providers weigh hundreds of MB).
                entry = plugins / plugin.cache_dir_name
                entry.mkdir(parents=True)
                (entry / plugin.binary_name).symlink_to(plugin.real)
                continue
            launcher = launchers / plugin.binary_name
            write_launcher(launcher, STANDIN_DIR / plugin.standin, False)
            self.run(
                "plugin",
                "install",
                "resource",
                plugin.name,
                plugin.version,
                "--file",
                str(launcher),
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
                **self.passphrase_env,
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
        self,
        *args: str,
        stdin: str | None = None,
        cwd: Path | None = None,
        merge_output: bool = False,
    ) -> subprocess.Popen[str]:
        """`pulumi args...` in a new process group (stderr joined to stdout if asked)."""
        process = subprocess.Popen(
            [str(self.bin_dir / "pulumi"), *args],
            cwd=cwd or self.project_dir,
            env=self.environment(),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
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

    def stream(
        self,
        *args: str,
        on_line: Callable[[str], None],
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        cwd: Path | None = None,
    ) -> PulumiResult:
        """`pulumi args...` with each line of its output handed to `on_line` as it comes
        (stderr joined to stdout), for progress an operator sees while it works."""
        started = time.monotonic()
        process = self.start(*args, cwd=cwd, merge_output=True)
        lines: list[str] = []
        deadline = started + timeout
        try:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                on_line(line.rstrip("\n"))
                if time.monotonic() > deadline:
                    raise TimeoutError
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except (TimeoutError, subprocess.TimeoutExpired):
            kill_group(process)
            raise AssertionError(
                f"pulumi {' '.join(args)} did not finish in {timeout:.0f}s"
            ) from None
        finally:
            if process.poll() is None:
                kill_group(process)
            if process in self._running:
                self._running.remove(process)
        return PulumiResult(
            tuple(args), process.returncode, "".join(lines), "", time.monotonic() - started
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
            for path, value in leaves(key, config[key]):
                self.set_secret(stack, path, value)


def shown(value: Any) -> Any:
    """A state value from `stack export --show-secrets`, each secret decoded in place."""
    if isinstance(value, dict):
        if SECRET_SIGNATURE_KEY in value and "plaintext" in value:
            return shown(json.loads(value["plaintext"]))
        return {key: shown(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shown(item) for item in value]
    return value


def leaves(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in leaves(f"{prefix}.{k}", v)]
    return [(prefix, str(value))]

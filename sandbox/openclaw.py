"""The real OpenClaw (npm `openclaw@2026.2.12`, installed by `scripts/oracle`), run offline:
the judge of what the program generates in the oracle tests, and the gateway the sandbox
starts for one tenant.

It is the upstream release the CVM image's fork (`h4x3rotab/openclaw`, branch
`phala-2026.2.12`) is based on, so it judges what the program generates the way the
image's OpenClaw does, except for the keys only the fork knows (see
`FORK_ONLY_KEYS` in sandbox/fork_keys.py).

Each `OracleState` is one OpenClaw home, isolated from the developer's own:
- the pinned Node (`node/bin/node` of the oracle folder) first on PATH;
- a private HOME, OPENCLAW_STATE_DIR and OPENCLAW_CONFIG_PATH in a temp folder, and no
  variable of the caller's environment but PATH's system part (so no
  OPENCLAW_GATEWAY_TOKEN or proxy setting leaks in);
- one TMPDIR beside the oracle install, shared by all runs: OpenClaw loads its ~30
  bundled plugins from TypeScript through jiti, whose transpile cache lives in
  $TMPDIR/jiti (as does Node's compile cache). Cold, a run takes minutes on a busy
  machine; warm, seconds;
- the `DSTACK_*` variables the CVM image passes to OpenClaw;
- the switches that keep OpenClaw off the network (`NETWORK_OFF_ENV`);
- the network guard (`openclaw_network_guard.cjs`) preloaded into every Node process,
  which refuses and records any attempt to reach beyond loopback.

Every process starts in a new process group and is stopped by that group's id, on
timeout and on exit of the `running_gateway` context (or, for the sandbox's gateway, which
outlives the command that started it, by `scripts/sandbox down`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.processes import stop_group

REPO = Path(__file__).resolve().parents[1]
NETWORK_GUARD = Path(__file__).with_name("openclaw_network_guard.cjs")
ORACLE_DIR_VAR = "OPENCLAW_ORACLE_DIR"

# What the CVM image hands to OpenClaw (compose forwards them); the bootstrap config's
# inboundUrl is filled from these by OpenClaw's config env substitution.
DSTACK_ENV: Mapping[str, str] = {
    "DSTACK_APP_ID": "0123456789abcdef0123456789abcdef01234567",
    "DSTACK_GATEWAY_DOMAIN": "dstack-pha-test.phala.network",
}

# Found in the installed dist code (env reads in dist/*.js):
NETWORK_OFF_ENV: Mapping[str, str] = {
    "OPENCLAW_DISABLE_BONJOUR": "1",  # mDNS announcements on 224.0.0.251
    "OPENCLAW_NIX_MODE": "1",  # "no auto-install flows": no plugin/dependency installs
    "OPENCLAW_SKIP_CHANNELS": "1",  # no channel connects (telegram/discord/whatsapp APIs)
    "OPENCLAW_SKIP_PROVIDERS": "1",  # no model provider discovery or catalog fetches
    "OPENCLAW_SKIP_GMAIL_WATCHER": "1",
    "OPENCLAW_SKIP_CRON": "1",
    "OPENCLAW_SKIP_BROWSER_CONTROL_SERVER": "1",
    "OPENCLAW_SKIP_CANVAS_HOST": "1",
    "OPENCLAW_NO_RESPAWN": "1",  # one process: the group we kill is the gateway itself
    "OPENCLAW_HIDE_BANNER": "1",
    "NO_COLOR": "1",
    "npm_config_offline": "true",  # belt and braces for any npm a plugin might spawn
}

GATEWAY_START_TIMEOUT = 240.0  # cold starts load ~30 bundled plugins; CI machines are slow
CLI_TIMEOUT = 180.0


class OracleUnavailableError(RuntimeError):
    pass


def locate_oracle() -> Path:
    """The oracle folder: $OPENCLAW_ORACLE_DIR, else a complete install in the cache."""
    configured = os.environ.get(ORACLE_DIR_VAR, "")
    if configured:
        folder = Path(configured)
    else:
        found = subprocess.run(
            [str(REPO / "scripts" / "oracle"), "--check"],
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode != 0:
            raise OracleUnavailableError(
                "the OpenClaw oracle is not installed: run ./scripts/oracle "
                f"(or set {ORACLE_DIR_VAR}); ./scripts/test does it"
            )
        folder = Path(found.stdout.strip())
    if not (folder / "node" / "bin" / "node").is_file() or not cli_script(folder).is_file():
        raise OracleUnavailableError(f"{folder} is not a complete oracle install")
    return folder


def cli_script(oracle_dir: Path) -> Path:
    return oracle_dir / "node_modules" / "openclaw" / "openclaw.mjs"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Gateway:
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] = {}
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=dict(headers))
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


class OracleState:
    """One OpenClaw state folder (`openclaw.json`, `identity/`, ...) and how to run in it."""

    def __init__(
        self, oracle_dir: Path, root: Path, dstack_env: Mapping[str, str] = DSTACK_ENV
    ) -> None:
        self.oracle_dir = oracle_dir
        self.root = root
        self.dstack_env = dict(dstack_env)
        self.home = root / "home"
        self.state_dir = root / "state"
        self.tmp = oracle_dir / ".runtime-cache" / "tmp"
        self.guard_log = root / "network-guard.jsonl"
        for folder in (self.home, self.state_dir, self.tmp):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    @property
    def config_path(self) -> Path:
        return self.state_dir / "openclaw.json"

    def write_config(self, config: Mapping[str, Any]) -> None:
        # OpenClaw logs to /tmp/openclaw/ unless its config names a file, and its log
        # quotes the config (tokens included): keep it in this test's private folder.
        logging = {"file": str(self.root / "openclaw.log"), **config.get("logging", {})}
        self.config_path.write_text(json.dumps({**config, "logging": logging}, indent=2))
        self.config_path.chmod(0o600)

    def env(self) -> dict[str, str]:
        node_bin = self.oracle_dir / "node" / "bin"
        return {
            "PATH": f"{node_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "LANG": "C.UTF-8",
            "OPENCLAW_STATE_DIR": str(self.state_dir),
            "OPENCLAW_CONFIG_PATH": str(self.config_path),
            "OPENCLAW_NETWORK_GUARD_LOG": str(self.guard_log),
            "NODE_OPTIONS": f"--require {NETWORK_GUARD}",
            **self.dstack_env,
            **NETWORK_OFF_ENV,
        }

    def command(self, args: Sequence[str]) -> list[str]:
        node = self.oracle_dir / "node" / "bin" / "node"
        return [str(node), str(cli_script(self.oracle_dir)), *args]

    def run_cli(
        self,
        args: Sequence[str],
        extra_env: Mapping[str, str] = {},
        unset_env: Sequence[str] = (),
        timeout: float = CLI_TIMEOUT,
    ) -> CliResult:
        env = {**self.env(), **extra_env}
        for name in unset_env:
            env.pop(name)
        process = subprocess.Popen(
            self.command(args),
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(process)
            raise
        finally:
            stop_group(process)
        return CliResult(process.returncode, stdout, stderr)

    def contacted(self) -> list[dict[str, Any]]:
        """Every non-loopback attempt the network guard refused, in order."""
        if not self.guard_log.exists():
            return []
        return [json.loads(line) for line in self.guard_log.read_text().splitlines() if line]

    def start_gateway(self, port: int) -> tuple[subprocess.Popen[bytes], Gateway]:
        """`openclaw gateway` on 127.0.0.1:`port` in a process group of its own, its output
        in a log beside its state; returns once it listens (stopped if it never does)."""
        log = self.root / f"gateway-{port}.log"
        # The port and bind are options of `openclaw gateway` itself: commander hands
        # them to the parent command even after `run`, so `gateway run --port` is ignored.
        args = ["gateway", "--port", str(port), "--bind", "loopback", "--ws-log", "compact"]
        with log.open("wb") as sink:
            process = subprocess.Popen(
                self.command(args),
                cwd=self.root,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        gateway = Gateway(port=port, log=log)
        try:
            _wait_until_listening(process, gateway)
        except BaseException:
            stop_group(process)
            raise
        return process, gateway

    @contextlib.contextmanager
    def running_gateway(self) -> Iterator[Gateway]:
        """`openclaw gateway` on 127.0.0.1 and a free port, stopped by its group id."""
        process, gateway = self.start_gateway(free_port())
        try:
            yield gateway
        finally:
            stop_group(process)


def _wait_until_listening(process: subprocess.Popen[Any], gateway: Gateway) -> None:
    deadline = time.monotonic() + GATEWAY_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"openclaw gateway exited with {process.returncode}:\n{gateway.log.read_text()}"
            )
        if re.search(r"listening on ws://127\.0\.0\.1:", gateway.log.read_text(errors="replace")):
            return
        time.sleep(0.5)
    raise RuntimeError(f"openclaw gateway did not listen in time:\n{gateway.log.read_text()}")

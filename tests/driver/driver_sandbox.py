"""The driver tests' world: the real driver and CLI against the Phala API emulator.

Each test gets a Sandbox: its own emulator, a HOME with a decoy SSH key the CLI must never
see, and a private TMPDIR that must be empty after every run."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from components import mux_jwt_key
from components.compose import mux_compose, openclaw_compose
from components.cvm_env import CvmEnv, mux_env, tenant_env
from components.derivation import mux_jwt_private_key_pem
from components.phala_cvm import HealthCheck, PhalaCvmArgs, driver_environment_values
from components.settings import PhalaSettings
from driver import protocol
from driver.spec import POLL_SECONDS_VAR
from emulators.phala import (
    EmulatedCvm,
    PhalaCloudEmulator,
)
from tests.support.phala_cli import PHALA_BIN

REPO_ROOT = Path(__file__).resolve().parents[2]

ENGINE_PYTHON = str(Path(sys.base_prefix) / "bin" / "python3")

DRIVER_RUN_TIMEOUT_SECONDS = 120  # a safety net only: a healthy run takes a few seconds

OPENCLAW_IMAGE = "ghcr.io/openclaw/openclaw-cvm@sha256:" + "1" * 64

OPENCLAW_IMAGE_V2 = "ghcr.io/openclaw/openclaw-cvm@sha256:" + "2" * 64

MUX_IMAGE = "ghcr.io/openclaw/mux-server@sha256:" + "3" * 64

OPERATOR_SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorKeyFromStackConfig op@laptop"

DECOY_SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDecoyKeyInHomeMustNeverBeUsed decoy@home"

MASTER_KEY = "master-key-0123456789abcdef0123456789abcdef"

REDPILL_KEY = "rp-live-redpill-key-9f8e7d6c5b4a"


@dataclass(frozen=True)
class DriverRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def record(self) -> dict[str, str]:
        """The one JSON line the driver prints on success."""
        lines = self.stdout.splitlines()
        assert len(lines) == 1, f"expected one stdout line, got {self.stdout!r}"
        return json.loads(lines[0])


@dataclass(frozen=True)
class Sandbox:
    """One test's world: its emulator, a HOME with a decoy key, and a private TMPDIR."""

    emulator: PhalaCloudEmulator
    home: Path
    tmpdir: Path
    scratch: Path

    def environment(
        self,
        inputs: Mapping[str, str],
        previous_stdout: str | None = None,
        overrides: Mapping[str, str | None] | None = None,
    ) -> dict[str, str]:
        env = self.emulator.cli_env(self.home)
        env |= {"TMPDIR": str(self.tmpdir), POLL_SECONDS_VAR: "0.05", **inputs}
        if previous_stdout is not None:
            env["PULUMI_COMMAND_STDOUT"] = previous_stdout
        for name, value in (overrides or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def start(
        self,
        command: str,
        inputs: Mapping[str, str],
        previous_stdout: str | None = None,
        overrides: Mapping[str, str | None] | None = None,
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [ENGINE_PYTHON, *protocol.PYTHON_FLAGS, protocol.DRIVER_SCRIPT, command],
            cwd=REPO_ROOT,
            env=self.environment(inputs, previous_stdout, overrides),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(
        self,
        command: str,
        inputs: Mapping[str, str],
        previous_stdout: str | None = None,
        overrides: Mapping[str, str | None] | None = None,
    ) -> DriverRun:
        return self.finish(self.start(command, inputs, previous_stdout, overrides))

    def finish(self, process: subprocess.Popen[str]) -> DriverRun:
        """Wait for a started driver, and check it left nothing behind."""
        try:
            stdout, stderr = process.communicate(timeout=DRIVER_RUN_TIMEOUT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        result = DriverRun(process.returncode, stdout, stderr)
        self.assert_clean_after(result)
        return result

    def assert_clean_after(self, result: DriverRun) -> None:
        assert self.emulator.api_key not in result.stdout + result.stderr
        leftovers = sorted(str(path) for path in self.tmpdir.rglob("*"))
        assert leftovers == [], f"the driver left files behind: {leftovers}"

    def logging_cli(self) -> CliLog:
        """A wrapper around the real CLI that records each argv and PID, then execs it."""
        log = CliLog(self.scratch / "cli-argv.log", self.scratch / "cli-pids.log")
        wrapper = self.scratch / "phala-logging-wrapper"
        wrapper.write_text(
            "#!/bin/sh\n"
            f'printf "%s\\n" "$*" >> {shlex.quote(str(log.argv_file))}\n'
            f"echo $$ >> {shlex.quote(str(log.pid_file))}\n"
            f'exec {shlex.quote(str(PHALA_BIN))} "$@"\n'
        )
        wrapper.chmod(0o755)
        log.wrapper = wrapper
        return log


@dataclass
class CliLog:
    argv_file: Path
    pid_file: Path
    wrapper: Path | None = None

    @property
    def overrides(self) -> dict[str, str | None]:
        assert self.wrapper is not None
        return {protocol.CLI_OVERRIDE: str(self.wrapper)}

    def argv_text(self) -> str:
        return self.argv_file.read_text() if self.argv_file.exists() else ""

    def pids(self) -> list[int]:
        if not self.pid_file.exists():
            return []
        return [int(line) for line in self.pid_file.read_text().split()]


def driver_inputs(
    name: str,
    *,
    role: str = "openclaw",
    compose: str | None = None,
    env: CvmEnv | None = None,
    instance_type: str = "tdx.medium",
    disk_size_gb: int = 40,
    dev_os: bool = False,
    ssh_public_key: str | None = None,
    existing_cvm_id: str | None = None,
    wait_timeout_seconds: int = 60,
    health_check: HealthCheck | None = None,
) -> dict[str, str]:
    """The Command environment, built by the program's own `driver_environment`."""
    if compose is None:
        compose = openclaw_compose(OPENCLAW_IMAGE) if role == "openclaw" else mux_compose(MUX_IMAGE)
    if env is None:
        env = default_env(role)
    settings = PhalaSettings(
        instance_type=instance_type,
        dev_os=dev_os,
        ssh_public_key=ssh_public_key,
        wait_timeout_seconds=wait_timeout_seconds,
        region=None,
        disk_size_gb=disk_size_gb,
        os_image=None,
        kms="phala",
        verify_health=health_check is not None,
    )
    args = PhalaCvmArgs(
        cvm_name=name,
        role=role,
        compose=compose,
        env=env,
        phala=settings,
        instance_type=instance_type,
        existing_cvm_id=existing_cvm_id,
        health_check=health_check,
    )
    # The values the program sends (driver_environment marks the secret ones secret,
    # which changes nothing the driver reads).
    environment = driver_environment_values(args)
    assert all(isinstance(value, str) for value in environment.values())
    return {name: str(value) for name, value in environment.items()}


def default_env(role: str) -> CvmEnv:
    if role == "mux":
        return mux_env(
            "mux-register-key-0123456789",
            "mux-admin-token-0123456789",
            mux_jwt_key.env_value(mux_jwt_private_key_pem("mux-root-for-driver-tests-0123456789")),
            None,
            None,
            None,
        )
    return tenant_env(MASTER_KEY, REDPILL_KEY, None, None)


def secret_env(values: Mapping[str, str]) -> CvmEnv:
    return CvmEnv(values=dict(values), secret_names=frozenset(values))


def recorded_stdout(cvm: EmulatedCvm) -> str:
    """What the driver would have printed for `cvm` (pulumi passes it back on update)."""
    record = {
        "appId": cvm.app_id,
        "composeHash": cvm.compose_hash,
        "cvmId": cvm.vm_uuid,
        "gatewayBaseDomain": cvm.gateway_base_domain,
        "name": cvm.name,
        "status": cvm.status,
    }
    return json.dumps(record, sort_keys=True) + "\n"


def only_cvm(emulator: PhalaCloudEmulator, name: str) -> EmulatedCvm:
    matching = [cvm for cvm in emulator.cvms() if cvm.name == name and not cvm.deleted]
    assert len(matching) == 1, f"expected exactly one CVM named {name}, found {len(matching)}"
    return matching[0]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def provisions(emulator: PhalaCloudEmulator) -> int:
    return emulator.count("POST", r"^/cvms/provision$")


def patches(emulator: PhalaCloudEmulator) -> int:
    return emulator.count("PATCH", r"^/cvms/")


HOSTILE_SECRETS = {
    "SINGLE_QUOTES": "it's 'quoted'",
    "DOUBLE_QUOTES": 'say "hi"',
    "BACKTICKS": "run `id` now",
    "SINGLE_AND_BACKTICK": "it's `id`",
    "SPACES_INSIDE": "correct horse battery staple",
    "HASHES": "abc#def # not a comment",
    "DOLLARS": "$HOME ${USER} $(id) $$",
    "EQUALS": "a=b==c=",
    "BACKSLASHES": "C:\\dir\\new\\t\\end",
    "LITERAL_BACKSLASH_N": "one\\ntwo\\r",
    "UNICODE": "héllo ✓ 日本語 🚀",
    "PADDED": "  leading and trailing  ",
    "EMPTY": "",
}

UNDELIVERABLE_SECRETS = {
    "REAL_NEWLINES": (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\nBgkqhkiG9w0B\n-----END PRIVATE KEY-----\n"
    ),
    "CARRIAGE_RETURNS": "windows\r\nline\rend",
    "NEWLINE_THEN_ASSIGNMENT": "x\nINJECTED=1",
    "DOUBLE_BACKSLASH": "C:\\\\share",
    "TRAILING_BACKSLASH": "ends in a backslash\\",
}


class HealthServer:
    """A local HTTP server answering from a script: each reply once, the last forever."""

    def __init__(self, replies: list[tuple[int, bytes]]) -> None:
        self.replies = list(replies)
        self.paths: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.paths.append(self.path)
                    status, body = (
                        server.replies.pop(0) if len(server.replies) > 1 else server.replies[0]
                    )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HealthServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    @property
    def template(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/health?app={{app_id}}&domain={{base_domain}}"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

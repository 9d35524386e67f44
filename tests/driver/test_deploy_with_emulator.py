"""The deploy driver end to end: the real pinned `phala` CLI against the API emulator.

Every test runs `python3 -I -S driver/phala_cvm.py <create|update|delete>` as a subprocess the
way pulumi_command does: cwd = the project directory, the inputs as environment variables
built by the program's own `driver_environment`, and the previous stdout passed back in
PULUMI_COMMAND_STDOUT. Each test gets its own emulator, HOME (with a decoy SSH key the
driver must never use) and TMPDIR; after every run the TMPDIR must be empty and the API
key must not appear in the output.

Each CLI start costs about a second of Node start-up, so CVMs a test only needs as a
starting point are seeded straight over HTTP, and lifecycle delays are kept tiny.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from components import mux_jwt_key
from components.compose import mux_compose, openclaw_compose
from components.cvm_env import CvmEnv, mux_env, tenant_env
from components.derivation import mux_jwt_private_key_pem
from components.phala_cvm import HealthCheck, PhalaCvmArgs, driver_environment
from components.settings import PhalaSettings
from driver import protocol
from driver.phala_cvm import HEALTH_URL_OVERRIDE_VAR, POLL_SECONDS_VAR, REDACTED
from emulators.phala import (
    DEFAULT_DEV_IMAGE,
    PHALA_BIN,
    STATUS_RUNNING,
    EmulatedCvm,
    PhalaCloudEmulator,
)
from tests.support.emulator_seed import seed_cvm

REPO_ROOT = Path(__file__).resolve().parents[2]
# pulumi_command runs `python3` from the engine's PATH, not this venv: use the interpreter
# the venv was made from, so a third-party import in the driver would fail here too.
ENGINE_PYTHON = str(Path(sys.base_prefix) / "bin" / "python3")
DRIVER_RUN_TIMEOUT_SECONDS = 120  # a safety net only: a healthy run takes a few seconds

OPENCLAW_IMAGE = "ghcr.io/openclaw/openclaw-cvm@sha256:" + "1" * 64
OPENCLAW_IMAGE_V2 = "ghcr.io/openclaw/openclaw-cvm@sha256:" + "2" * 64
MUX_IMAGE = "ghcr.io/openclaw/mux-server@sha256:" + "3" * 64
OPERATOR_SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorKeyFromStackConfig op@laptop"
DECOY_SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDecoyKeyInHomeMustNeverBeUsed decoy@home"
MASTER_KEY = "master-key-0123456789abcdef0123456789abcdef"
REDPILL_KEY = "rp-live-redpill-key-9f8e7d6c5b4a"


# --------------------------------------------------------------------------- harness


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
        process = self.start(command, inputs, previous_stdout, overrides)
        stdout, stderr = process.communicate(timeout=DRIVER_RUN_TIMEOUT_SECONDS)
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


@pytest.fixture
def emulator() -> Iterator[PhalaCloudEmulator]:
    # Updates settle at once so the CLI's `--wait` ends on its first poll; creates take a
    # moment so the driver's own wait for running is exercised.
    running = PhalaCloudEmulator(provision_seconds=0.1, update_seconds=0.0).start()
    yield running
    # stop() waits out serve_forever's 0.5 s poll; nothing else uses this emulator, so
    # let it finish in the background instead of adding half a second to every test.
    threading.Thread(target=running.stop, name="emulator-stop", daemon=True).start()


@pytest.fixture
def sandbox(emulator: PhalaCloudEmulator, tmp_path: Path) -> Sandbox:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    # The CLI picks up ~/.ssh/*.pub on its own; the driver must hide this from it.
    (home / ".ssh" / "id_ed25519.pub").write_text(DECOY_SSH_KEY + "\n")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return Sandbox(emulator, home, tmpdir, scratch)


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
    environment = driver_environment(args)
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
    matching = [cvm for cvm in emulator.cvms() if cvm.name == name]
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


# --------------------------------------------------------------------------- create


def test_create_waits_for_running_and_reports_the_cvm_it_made(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    compose = openclaw_compose(OPENCLAW_IMAGE)
    env = tenant_env(MASTER_KEY, REDPILL_KEY, None, None)
    inputs = driver_inputs(
        "alice-gateway",
        compose=compose,
        env=env,
        instance_type="tdx.large",
        disk_size_gb=80,
        dev_os=True,
        ssh_public_key=OPERATOR_SSH_KEY,
    )

    result = sandbox.run("create", inputs)

    assert result.returncode == 0, result.stderr
    cvm = only_cvm(emulator, "alice-gateway")
    assert result.record == {
        "cvmId": cvm.vm_uuid,
        "appId": cvm.app_id,
        "name": "alice-gateway",
        "status": STATUS_RUNNING,
        "gatewayBaseDomain": emulator.gateway_base_domain,
        "composeHash": cvm.compose_hash,
    }
    assert tuple(result.record) == tuple(sorted(protocol.OUTPUT_FIELDS))
    assert emulator.count("GET", "^/cvms/" + cvm.vm_uuid.replace("-", "") + "$") >= 1
    assert (cvm.instance_type, cvm.vcpu, cvm.memory_mb) == ("tdx.large", 4, 8192)
    assert cvm.disk_size_gb == 80
    assert (cvm.prefer_dev, cvm.image) == (True, DEFAULT_DEV_IMAGE)
    provision = emulator.requests("POST", r"^/cvms/provision$")[0].body
    assert (provision["prefer_dev"], provision["disk_size"]) == (True, 80)
    assert cvm.docker_compose_file == compose  # byte-exact
    decrypted = emulator.decrypted_env(cvm)
    expected = {**env.values, "DSTACK_AUTHORIZED_KEYS": OPERATOR_SSH_KEY}
    assert decrypted == expected
    assert list(decrypted) == list(expected)
    assert provisions(emulator) == 1


def test_create_for_an_existing_name_adopts_it_and_updates_it_in_place(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    existing = seed_cvm(emulator, "bob-gateway", openclaw_compose(OPENCLAW_IMAGE))
    new_compose = openclaw_compose(OPENCLAW_IMAGE_V2)

    result = sandbox.run("create", driver_inputs("bob-gateway", compose=new_compose))

    assert result.returncode == 0, result.stderr
    assert "adopting existing CVM bob-gateway" in result.stderr
    cvm = only_cvm(emulator, "bob-gateway")
    assert cvm.vm_uuid == existing.vm_uuid == result.record["cvmId"]
    assert [revision.source for revision in cvm.revisions] == ["create", "update"]
    assert cvm.docker_compose_file == new_compose
    assert emulator.decrypted_env(cvm) == dict(default_env("openclaw").values)
    assert (provisions(emulator), patches(emulator)) == (0, 1)


def test_create_with_a_configured_cvm_id_adopts_that_cvm(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    existing = seed_cvm(emulator, "carol-gateway", openclaw_compose(OPENCLAW_IMAGE))
    # The bare 40-hex app id, as an operator would paste it from the dashboard.
    inputs = driver_inputs("carol-gateway", existing_cvm_id=existing.app_id)

    result = sandbox.run("create", inputs)

    assert result.returncode == 0, result.stderr
    assert result.record["cvmId"] == existing.vm_uuid
    assert emulator.count("GET", r"^/apps$") == 0  # no name search when the id is given
    assert (provisions(emulator), patches(emulator)) == (0, 1)
    assert len(emulator.cvms()) == 1


def test_create_refuses_when_two_cvms_share_the_name(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    emulator.allow_duplicate_names = True
    first = seed_cvm(emulator, "dave-gateway", openclaw_compose(OPENCLAW_IMAGE))
    second = seed_cvm(emulator, "dave-gateway", openclaw_compose(OPENCLAW_IMAGE))

    result = sandbox.run("create", driver_inputs("dave-gateway"))

    assert result.returncode == 1
    assert result.stdout == ""
    assert "2 CVMs are named 'dave-gateway'" in result.stderr
    assert first.app_id in result.stderr and second.app_id in result.stderr
    assert "set cvmId" in result.stderr
    assert (provisions(emulator), patches(emulator)) == (0, 0)


# --------------------------------------------------------------------------- update


def test_update_changes_compose_and_env_in_place_and_keeps_the_ssh_key(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    created = sandbox.run(
        "create", driver_inputs("erin-gateway", dev_os=True, ssh_public_key=OPERATOR_SSH_KEY)
    )
    assert created.returncode == 0, created.stderr
    new_compose = openclaw_compose(OPENCLAW_IMAGE_V2)
    new_env = tenant_env(MASTER_KEY, "rp-rotated-redpill-key-000111", None, None)
    inputs = driver_inputs(
        "erin-gateway",
        compose=new_compose,
        env=new_env,
        dev_os=True,
        ssh_public_key=OPERATOR_SSH_KEY,
    )

    updated = sandbox.run("update", inputs, previous_stdout=created.stdout)

    assert updated.returncode == 0, updated.stderr
    cvm = only_cvm(emulator, "erin-gateway")
    assert updated.record["cvmId"] == created.record["cvmId"] == cvm.vm_uuid
    assert updated.record["composeHash"] == cvm.compose_hash != created.record["composeHash"]
    assert updated.record["status"] == STATUS_RUNNING
    assert [revision.source for revision in cvm.revisions] == ["create", "update"]
    assert cvm.docker_compose_file == new_compose
    assert emulator.decrypted_env(cvm) == {
        **new_env.values,
        "DSTACK_AUTHORIZED_KEYS": OPERATOR_SSH_KEY,
    }
    assert provisions(emulator) == 1


# --------------------------------------------------------------------------- role safety


def test_configured_cvm_id_of_a_differently_named_cvm_is_refused_without_a_patch(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    stranger = seed_cvm(emulator, "someone-else", openclaw_compose(OPENCLAW_IMAGE))

    result = sandbox.run("create", driver_inputs("frank-gateway", existing_cvm_id=stranger.vm_uuid))

    assert result.returncode == 1
    assert "refusing to deploy the openclaw compose" in result.stderr
    assert "named 'someone-else', not 'frank-gateway'" in result.stderr
    assert (provisions(emulator), patches(emulator)) == (0, 0)
    assert only_cvm(emulator, "someone-else").revisions == stranger.revisions


def test_mux_compose_never_lands_on_a_cvm_running_openclaw(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    gateway = seed_cvm(emulator, "shared-name", openclaw_compose(OPENCLAW_IMAGE))

    adopted = sandbox.run("create", driver_inputs("shared-name", role="mux"))
    updated = sandbox.run(
        "update", driver_inputs("shared-name", role="mux"), recorded_stdout(gateway)
    )

    for result in (adopted, updated):
        assert result.returncode == 1
        assert "refusing to deploy the mux compose" in result.stderr
        assert "it runs the openclaw service" in result.stderr
    assert (provisions(emulator), patches(emulator)) == (0, 0)
    assert only_cvm(emulator, "shared-name").docker_compose_file == gateway.docker_compose_file


def test_openclaw_compose_never_lands_on_the_mux_cvm_and_never_deletes_it(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    mux = seed_cvm(emulator, "mux-main", mux_compose(MUX_IMAGE))
    inputs = driver_inputs("mux-main", role="openclaw")

    adopted = sandbox.run("create", inputs)
    updated = sandbox.run("update", inputs, recorded_stdout(mux))
    deleted = sandbox.run("delete", inputs, recorded_stdout(mux))

    for result in (adopted, updated, deleted):
        assert result.returncode == 1
        assert "it runs the mux-server service" in result.stderr
    assert (provisions(emulator), patches(emulator)) == (0, 0)
    assert emulator.count("DELETE") == 0
    assert only_cvm(emulator, "mux-main").docker_compose_file == mux.docker_compose_file


# --------------------------------------------------------------------------- delete


def test_delete_removes_the_recorded_cvm(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    cvm = seed_cvm(emulator, "gina-gateway", openclaw_compose(OPENCLAW_IMAGE))

    result = sandbox.run("delete", driver_inputs("gina-gateway"), recorded_stdout(cvm))

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert emulator.cvms() == []
    assert emulator.count("DELETE", r"^/cvms/") == 1


def test_delete_works_with_a_multiline_env_value_an_older_program_deployed(
    sandbox: Sandbox,
) -> None:
    # Earlier versions sent MUX_JWT_PRIVATE_KEY; the engine deletes with the old inputs.
    emulator = sandbox.emulator
    cvm = seed_cvm(emulator, "old-mux-gateway", openclaw_compose(OPENCLAW_IMAGE))
    env = secret_env({"MUX_JWT_PRIVATE_KEY": UNDELIVERABLE_SECRETS["REAL_NEWLINES"]})

    result = sandbox.run("delete", driver_inputs("old-mux-gateway", env=env), recorded_stdout(cvm))

    assert result.returncode == 0, result.stderr
    assert emulator.cvms() == []


def test_deleting_twice_succeeds_the_second_time_as_already_gone(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    cvm = seed_cvm(emulator, "hank-gateway", openclaw_compose(OPENCLAW_IMAGE))
    inputs = driver_inputs("hank-gateway")

    first = sandbox.run("delete", inputs, recorded_stdout(cvm))
    second = sandbox.run("delete", inputs, recorded_stdout(cvm))

    assert (first.returncode, second.returncode) == (0, 0), second.stderr
    assert "is already gone" in second.stderr
    assert emulator.count("DELETE") == 1


def test_delete_without_previous_stdout_does_nothing(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    bystander = seed_cvm(emulator, "ivy-gateway", openclaw_compose(OPENCLAW_IMAGE))

    result = sandbox.run("delete", driver_inputs("ivy-gateway"))

    assert result.returncode == 0, result.stderr
    assert "nothing to delete" in result.stderr
    assert emulator.count() == 0
    assert [cvm.vm_uuid for cvm in emulator.cvms()] == [bystander.vm_uuid]


# --------------------------------------------------------------------------- secrets


# Hostile to the phala CLI's env file, yet delivered intact by dstack inside the CVM.
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
# The phala CLI would carry these, but dstack would not (driver/dstack_env.py).
UNDELIVERABLE_SECRETS = {
    "REAL_NEWLINES": (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\nBgkqhkiG9w0B\n-----END PRIVATE KEY-----\n"
    ),
    "CARRIAGE_RETURNS": "windows\r\nline\rend",
    "NEWLINE_THEN_ASSIGNMENT": "x\nINJECTED=1",
    "DOUBLE_BACKSLASH": "C:\\\\share",
    "TRAILING_BACKSLASH": "ends in a backslash\\",
}


def test_hostile_secret_values_arrive_byte_exact(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator

    result = sandbox.run("create", driver_inputs("jack-gateway", env=secret_env(HOSTILE_SECRETS)))

    assert result.returncode == 0, result.stderr
    decrypted = emulator.decrypted_env(only_cvm(emulator, "jack-gateway"))
    assert decrypted == HOSTILE_SECRETS
    assert list(decrypted) == list(HOSTILE_SECRETS)


def test_the_mux_jwt_key_reaches_the_cvm_on_one_line_byte_exact(sandbox: Sandbox) -> None:
    env = default_env("mux")

    result = sandbox.run("create", driver_inputs("kim-mux", role="mux", env=env))

    assert result.returncode == 0, result.stderr
    decrypted = sandbox.emulator.decrypted_env(only_cvm(sandbox.emulator, "kim-mux"))
    assert decrypted[mux_jwt_key.ENV_NAME] == env.values[mux_jwt_key.ENV_NAME]
    assert decrypted[mux_jwt_key.ENV_NAME] not in result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(UNDELIVERABLE_SECRETS))
def test_a_value_dstack_would_alter_is_refused_before_any_request_naming_only_the_key(
    sandbox: Sandbox, name: str
) -> None:
    emulator = sandbox.emulator
    value = UNDELIVERABLE_SECRETS[name]
    env = secret_env({"FINE": "ok-value", name: value})

    result = sandbox.run("create", driver_inputs("mia-gateway", env=env))

    assert result.returncode == 1
    assert f"CVM env var {name} would not reach the container intact" in result.stderr
    # Nothing of the value (short fragments aside, which ordinary words contain).
    for fragment in value.splitlines():
        if len(fragment) > 5:
            assert fragment not in result.stderr
    assert provisions(emulator) == 0
    assert emulator.cvms() == []


def test_a_value_with_all_three_quote_kinds_fails_naming_the_key_not_the_value(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    unquotable = 'it\'s `really` "unquotable"'
    env = secret_env({"FINE": "ok-value", "UNQUOTABLE_SECRET": unquotable})

    result = sandbox.run("create", driver_inputs("kate-gateway", env=env))

    assert result.returncode == 1
    assert "UNQUOTABLE_SECRET" in result.stderr
    assert "phala CLI's env file" in result.stderr
    assert unquotable not in result.stderr
    assert "unquotable" not in result.stderr  # not even a fragment of it
    assert provisions(emulator) == 0
    assert emulator.cvms() == []


def test_no_secret_reaches_output_error_messages_or_cli_argv(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    cli_log = sandbox.logging_cli()
    secrets = {
        "MASTER_KEY": "mk-distinctive-secret-7f3a9c1e5b",
        "REDPILL_API_KEY": "rp-distinctive-secret-2d8e4f6a0c",
        "SPACED_KEY": "first-part-of-the-key second-part-of-the-key",
    }
    inputs = driver_inputs("liam-gateway", env=secret_env(secrets))
    created = sandbox.run("create", inputs, overrides=cli_log.overrides)
    # A server that echoes what it got in its error: the driver must scrub the echo.
    echoed = f"rejected {secrets['MASTER_KEY']} for key {emulator.api_key}"
    emulator.inject_error("PATCH", r"^/cvms/", status=500, detail=echoed)

    failed = sandbox.run(
        "update", inputs, previous_stdout=created.stdout, overrides=cli_log.overrides
    )

    assert created.returncode == 0, created.stderr
    assert failed.returncode == 1
    assert f"rejected {REDACTED} for key {REDACTED}" in failed.stderr
    argv = cli_log.argv_text()
    assert [line.split(" ")[0] for line in argv.splitlines()] == ["deploy", "deploy"]
    everything = created.stdout + created.stderr + failed.stdout + failed.stderr + argv
    for secret in [*secrets.values(), *secrets["SPACED_KEY"].split()]:
        assert secret not in everything
    assert emulator.api_key not in everything
    # The env files the CLI was pointed at are gone.
    env_files = [Path(line.split(" --env=")[1].split(" ")[0]) for line in argv.splitlines()]
    assert len(env_files) == 2
    assert not any(path.exists() for path in env_files)
    assert all(path.is_relative_to(sandbox.tmpdir) for path in env_files)


# --------------------------------------------------------------------------- interrupts


def test_sigterm_while_waiting_on_a_stuck_cvm_exits_promptly_and_cleans_up(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    emulator.make_stuck("mia-gateway")
    process = sandbox.start("create", driver_inputs("mia-gateway", wait_timeout_seconds=600))
    try:
        # Past the CLI: the driver is polling a CVM that will never be running.
        wait_until(lambda: emulator.count("GET", r"^/cvms/[0-9a-f]{32}$") >= 2, "status polls")
        assert list(sandbox.tmpdir.iterdir()) != []  # there is something to clean up
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 130
    assert stdout == ""
    assert "interrupted by SIGTERM" in stderr
    sandbox.assert_clean_after(DriverRun(process.returncode, stdout, stderr))


def test_sigint_while_the_cli_waits_on_a_stuck_update_stops_the_cli_and_cleans_up(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    cvm = seed_cvm(emulator, "noah-gateway", openclaw_compose(OPENCLAW_IMAGE))
    emulator.make_stuck("noah-gateway")
    cli_log = sandbox.logging_cli()
    inputs = driver_inputs("noah-gateway", compose=openclaw_compose(OPENCLAW_IMAGE_V2))
    process = sandbox.start("update", inputs, recorded_stdout(cvm), overrides=cli_log.overrides)
    try:
        # The CLI has sent the PATCH and now polls in `deploy --wait`.
        wait_until(lambda: patches(emulator) == 1, "the update PATCH")
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 130
    assert "interrupted by SIGINT" in stderr
    sandbox.assert_clean_after(DriverRun(process.returncode, stdout, stderr))
    [cli_pid] = cli_log.pids()
    with pytest.raises(ProcessLookupError):
        os.kill(cli_pid, 0)


# --------------------------------------------------------------------------- credentials, CLI


def test_missing_api_key_says_how_to_set_it(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "create", driver_inputs("olga-gateway"), overrides={"PHALA_CLOUD_API_KEY": None}
    )

    assert result.returncode == 1
    assert "no Phala Cloud API key" in result.stderr
    assert "export PHALA_CLOUD_API_KEY=" in result.stderr
    assert "phala login" in result.stderr
    assert sandbox.emulator.count() == 0


def test_wrong_api_key_is_a_clear_error(sandbox: Sandbox) -> None:
    wrong_key = "phak_wrong_key_do_not_print_7788"

    result = sandbox.run(
        "create", driver_inputs("paul-gateway"), overrides={"PHALA_CLOUD_API_KEY": wrong_key}
    )

    assert result.returncode == 1
    assert "HTTP 401" in result.stderr
    assert "Invalid API key" in result.stderr
    assert wrong_key not in result.stdout + result.stderr
    assert sandbox.emulator.cvms() == []


def test_missing_cli_names_the_path_and_npm_ci(sandbox: Sandbox) -> None:
    absent = sandbox.scratch / "node_modules" / ".bin" / "phala"

    result = sandbox.run(
        "create", driver_inputs("quinn-gateway"), overrides={protocol.CLI_OVERRIDE: str(absent)}
    )

    assert result.returncode == 1
    assert f"phala CLI not found at {absent}" in result.stderr
    assert "npm ci" in result.stderr
    assert sandbox.emulator.count() == 0


# --------------------------------------------------------------------------- faults


def test_5xx_on_provision_fails_clearly_and_the_next_create_converges(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    emulator.inject_error("POST", r"^/cvms/provision$", status=503, detail="No capacity (test)")
    inputs = driver_inputs("rosa-gateway")

    failed = sandbox.run("create", inputs)
    retried = sandbox.run("create", inputs)

    assert failed.returncode == 1
    assert failed.stdout == ""
    assert "creating CVM rosa-gateway failed: No capacity (test)" in failed.stderr
    assert retried.returncode == 0, retried.stderr
    assert retried.record["cvmId"] == only_cvm(emulator, "rosa-gateway").vm_uuid


def test_5xx_on_commit_fails_clearly_and_the_next_create_converges(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    emulator.inject_error("POST", r"^/cvms$", status=500, detail="Commit exploded (test)")
    inputs = driver_inputs("sam-gateway")

    failed = sandbox.run("create", inputs)
    retried = sandbox.run("create", inputs)

    assert failed.returncode == 1
    assert (
        "creating CVM sam-gateway failed: Failed to commit CVM provision: Commit exploded (test)"
        in failed.stderr
    )
    assert retried.returncode == 0, retried.stderr
    cvm = only_cvm(emulator, "sam-gateway")
    assert emulator.decrypted_env(cvm) == dict(default_env("openclaw").values)


def test_5xx_on_patch_fails_clearly_and_the_next_update_converges(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    cvm = seed_cvm(emulator, "tina-gateway", openclaw_compose(OPENCLAW_IMAGE))
    emulator.inject_error("PATCH", r"^/cvms/", status=502, detail="Upstream gone (test)")
    new_compose = openclaw_compose(OPENCLAW_IMAGE_V2)
    inputs = driver_inputs("tina-gateway", compose=new_compose)

    failed = sandbox.run("update", inputs, recorded_stdout(cvm))
    unchanged = only_cvm(emulator, "tina-gateway")
    retried = sandbox.run("update", inputs, recorded_stdout(cvm))

    assert failed.returncode == 1
    assert "updating CVM tina-gateway failed: Upstream gone (test)" in failed.stderr
    assert unchanged.docker_compose_file == cvm.docker_compose_file
    assert retried.returncode == 0, retried.stderr
    converged = only_cvm(emulator, "tina-gateway")
    assert converged.vm_uuid == cvm.vm_uuid == retried.record["cvmId"]
    assert converged.docker_compose_file == new_compose


def test_commit_slower_than_the_cli_timeout_fails_clearly_and_the_next_create_adopts(
    sandbox: Sandbox,
) -> None:
    """The worst slow reply: the CLI gives up on `POST /cvms` (30 s) but Phala commits."""
    emulator = sandbox.emulator
    emulator.inject_delay("POST", r"^/cvms$", 31)
    inputs = driver_inputs("uma-gateway")

    failed = sandbox.run("create", inputs)
    wait_until(lambda: emulator.cvm_by_name("uma-gateway") is not None, "the late commit")
    retried = sandbox.run("create", inputs)

    assert failed.returncode == 1
    # The CLI reports its own request timeout only as "Unknown API error".
    assert "creating CVM uma-gateway failed: Failed to commit CVM provision" in failed.stderr
    assert "the CVM may exist anyway: a re-run adopts it" in failed.stderr
    assert retried.returncode == 0, retried.stderr
    assert "adopting existing CVM uma-gateway" in retried.stderr
    assert retried.record["cvmId"] == only_cvm(emulator, "uma-gateway").vm_uuid
    assert provisions(emulator) == 1


def test_cvm_stuck_starting_times_out_and_a_rerun_adopts_it(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    emulator.make_stuck("vera-gateway")
    inputs = driver_inputs("vera-gateway", wait_timeout_seconds=1)

    timed_out = sandbox.run("create", inputs)
    emulator.reset_faults()  # the platform recovers and the CVM finishes booting
    emulator.set_status("vera-gateway", STATUS_RUNNING)
    rerun = sandbox.run("create", inputs)

    assert timed_out.returncode == 1
    assert "vera-gateway" in timed_out.stderr
    assert "was still starting after 1s (phalaWaitTimeoutSeconds)" in timed_out.stderr
    assert "a re-run continues" in timed_out.stderr
    assert rerun.returncode == 0, rerun.stderr
    assert "adopting existing CVM vera-gateway" in rerun.stderr
    assert rerun.record["cvmId"] == only_cvm(emulator, "vera-gateway").vm_uuid
    assert provisions(emulator) == 1


def test_cvm_in_error_status_fails_clearly_and_the_next_create_converges(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    emulator.make_failing("wade-gateway", boot_error="kernel panic (test)")
    inputs = driver_inputs("wade-gateway")

    failed = sandbox.run("create", inputs)
    emulator.reset_faults()
    retried = sandbox.run("create", inputs)

    assert failed.returncode == 1
    assert "CVM wade-gateway" in failed.stderr
    assert "is error, not running" in failed.stderr
    assert retried.returncode == 0, retried.stderr
    assert retried.record["status"] == STATUS_RUNNING
    assert provisions(emulator) == 1


def test_update_recreates_a_cvm_deleted_behind_our_back(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    gone = seed_cvm(emulator, "xena-gateway", openclaw_compose(OPENCLAW_IMAGE))
    emulator.delete_behind_back(gone.vm_uuid)

    result = sandbox.run("update", driver_inputs("xena-gateway"), recorded_stdout(gone))

    assert result.returncode == 0, result.stderr
    assert "no longer exists" in result.stderr
    recreated = only_cvm(emulator, "xena-gateway")
    assert result.record["cvmId"] == recreated.vm_uuid != gone.vm_uuid
    assert emulator.decrypted_env(recreated) == dict(default_env("openclaw").values)


def test_update_restores_a_compose_changed_outside(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    compose = openclaw_compose(OPENCLAW_IMAGE)
    cvm = seed_cvm(emulator, "yara-gateway", compose)
    emulator.change_compose_externally(cvm.vm_uuid, openclaw_compose(OPENCLAW_IMAGE_V2))

    result = sandbox.run("update", driver_inputs("yara-gateway"), recorded_stdout(cvm))

    assert result.returncode == 0, result.stderr
    restored = only_cvm(emulator, "yara-gateway")
    assert restored.vm_uuid == cvm.vm_uuid
    assert restored.docker_compose_file == compose
    assert [revision.source for revision in restored.revisions] == ["create", "external", "update"]
    assert result.record["composeHash"] == restored.compose_hash


# --------------------------------------------------------------------------- health check


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


def test_health_json_ok_succeeds_once_health_answers_ok_after_failures(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    replies = [(503, b"{}"), (200, b'{"ok": false}'), (200, b"not json"), (200, b'{"ok":true}')]
    with HealthServer(replies) as server:
        check = HealthCheck(server.template, protocol.HEALTH_EXPECT_JSON_OK)
        result = sandbox.run("create", driver_inputs("zack-gateway", health_check=check))

    assert result.returncode == 0, result.stderr
    cvm = only_cvm(emulator, "zack-gateway")
    assert len(server.paths) == 4
    assert set(server.paths) == {f"/health?app={cvm.app_id}&domain={emulator.gateway_base_domain}"}


def test_the_operator_can_send_health_checks_elsewhere(sandbox: Sandbox) -> None:
    with HealthServer([(200, b'{"ok":true}')]) as server:
        # The program's template is unreachable; the operator's override is used instead.
        unreachable = HealthCheck(
            "https://{app_id}-18789.{base_domain}/", protocol.HEALTH_EXPECT_JSON_OK
        )
        inputs = driver_inputs("omar-gateway", health_check=unreachable)
        result = sandbox.run("create", inputs, overrides={HEALTH_URL_OVERRIDE_VAR: server.template})
    assert result.returncode == 0, result.stderr
    cvm = only_cvm(sandbox.emulator, "omar-gateway")
    assert server.paths == [
        f"/health?app={cvm.app_id}&domain={sandbox.emulator.gateway_base_domain}"
    ]


def test_health_json_ok_that_never_answers_ok_times_out_clearly(sandbox: Sandbox) -> None:
    with HealthServer([(503, b'{"ok": false}')]) as server:
        check = HealthCheck(server.template, protocol.HEALTH_EXPECT_JSON_OK)
        inputs = driver_inputs("abby-gateway", health_check=check, wait_timeout_seconds=1)
        result = sandbox.run("create", inputs)

    assert result.returncode == 1
    assert "CVM abby-gateway is running but http://127.0.0.1:" in result.stderr
    assert "did not answer as expected within 1s (last: HTTP 503)" in result.stderr


def test_health_http_expectation_accepts_an_unauthorized_answer(sandbox: Sandbox) -> None:
    with HealthServer([(401, b'{"detail": "login first"}')]) as server:
        check = HealthCheck(server.template, protocol.HEALTH_EXPECT_HTTP)
        result = sandbox.run("create", driver_inputs("beth-gateway", health_check=check))

    assert result.returncode == 0, result.stderr
    assert len(server.paths) == 1


def test_health_http_expectation_rejects_connection_refused(sandbox: Sandbox) -> None:
    template = f"http://127.0.0.1:{closed_port()}/health"
    check = HealthCheck(template, protocol.HEALTH_EXPECT_HTTP)

    result = sandbox.run(
        "create", driver_inputs("cora-gateway", health_check=check, wait_timeout_seconds=1)
    )

    assert result.returncode == 1
    assert f"{template} did not answer as expected within 1s" in result.stderr
    assert "Connection refused" in result.stderr

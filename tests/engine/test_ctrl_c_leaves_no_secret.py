"""Ctrl-C under the real engine, with the command stand-in's faithful Cancel: it SIGKILLs
the process it started, as pulumi-command's Go exec.CommandContext does. On a machine whose
/bin/sh execs the driver (bash) that is the driver itself; on one whose /bin/sh forks it
(Debian 12's dash) it is only the shell, and the driver runs on to the end of its work.
Either way, whether it was creating, updating or deleting a CVM and whatever its `phala`
CLI was doing, no secret rests on any disk the run touched, and no CLI outlives its
driver."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from components.derivation import derive_tenant_keys
from emulators.phala import PhalaCloudEmulator
from standins.command_provider import SYSTEM_SHELL_VAR
from tests.support.engine_harness import PulumiWorkspace, kill_group
from tests.support.engine_stacks import STACK, local_stack_config
from tests.support.secret_scan import files_under, scan_files
from tests.support.stack_configs import REDPILL_KEY, master_key_for

TENANT = "ctrlc-agent"
EXECS = "/bin/bash"  # execs a lone simple command: Cancel kills the driver itself
FORKS = "/bin/sh"  # Debian 12's dash forks it: Cancel kills only the shell
IMAGE_V2 = "h4x3rotab/openclaw-cvm@sha256:" + "9" * 64
WAIT_SECONDS = 120


def every_secret() -> dict[str, str]:
    keys = derive_tenant_keys(master_key_for(TENANT))
    return {
        "masterKey": master_key_for(TENANT),
        "redpillApiKey": REDPILL_KEY,
        "gatewayToken": keys.gateway_token,
        "rclone password": keys.rclone_crypt_password,
        "rclone salt": keys.rclone_crypt_salt,
    }


def phala_clis_of(workspace: PulumiWorkspace) -> list[int]:
    """Live `phala` CLI processes started under this workspace (they inherit its
    PULUMI_HOME through the engine, the provider and the driver)."""
    marker = f"PULUMI_HOME={workspace.pulumi_home}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes() + b"\0"
            command = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ and b"phala" in command and state != "Z":
            found.append(int(entry.name))
    return found


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("stage", "shell"),
    [
        ("create", EXECS),
        ("update", EXECS),
        ("delete", EXECS),
        ("update", FORKS),
    ],
)
def test_ctrl_c_at_any_stage_leaves_no_secret_on_disk_and_no_cli_running(
    engine_dir: Path, tmp_path: Path, stage: str, shell: str
) -> None:
    with PhalaCloudEmulator(provision_seconds=0.2, update_seconds=0.2) as emulator:
        workspace = PulumiWorkspace(engine_dir, tmp_path / "engine", emulator)
        workspace.extra_env[SYSTEM_SHELL_VAR] = shell
        try:
            config, secret_keys = local_stack_config((TENANT,))
            config["tenants"][0]["allowDataLoss"] = True  # so a destroy may delete it
            workspace.init_stack(STACK)
            workspace.configure(STACK, config, secret_keys)
            if stage != "create":
                workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()
            # The CLI's request for this stage is held by the service, so the driver is
            # killed with its CLI half-way through.
            held = {"create": ("POST", r"^/cvms$"), "update": ("PATCH", r"^/cvms/")}.get(
                stage, ("DELETE", r"^/cvms/")
            )
            emulator.inject_delay(*held, 300)
            if stage == "update":
                workspace.write_plain_config(STACK, {"openclawImage": IMAGE_V2})
            command = ("destroy",) if stage == "delete" else ("up", "--skip-preview")
            process = workspace.start(*command, "--yes", "--stack", STACK)
            try:
                wait_until(lambda: emulator.in_flight(*held) == 1, f"the {stage} request")
                os.killpg(process.pid, signal.SIGINT)  # Ctrl-C at a terminal
                if shell == EXECS:
                    # The driver itself is killed while its CLI waits on the held request,
                    # and the CLI dies with it, its request still unanswered.
                    wait_until(lambda: phala_clis_of(workspace) == [], "the CLI to die")
                    assert emulator.in_flight(*held) == 1
                else:
                    # Only the shell is killed: the driver's work goes on to its end.
                    emulator.release_delays()
                stdout, stderr = process.communicate(timeout=WAIT_SECONDS)
            finally:
                kill_group(process)
            assert "signal: killed" in stdout + stderr, stdout + stderr
            assert phala_clis_of(workspace) == []
            # Every folder the run wrote to (the project is links to this checkout, but
            # for its stack file, whose secrets are ciphertext).
            folders = [root for root in workspace.root.iterdir() if root.name != "project"]
            written = [*files_under(folders), workspace.stack_file(STACK)]
            assert scan_files(written, every_secret(), base=tmp_path) == []
        finally:
            emulator.release_delays()
            workspace.close()

"""`ops ssh`, `ops exec` and `ops cp` end to end: real ssh through the production
ProxyCommand (`openssl s_client`), a real TLS front (stunnel4) and a real sshd.

Only the port and the CA the ProxyCommand trusts are test knobs; the host comes
from a stack-outputs file, exactly as in production.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.ssh import SshSettings, proxy_command, ssh_command
from ops.stack_outputs import parse_stack_outputs
from ops.targets import resolve_target
from tests.ops.ops_process import REPO, run_ops, start_ops
from tests.ops.outputs_document import make_outputs, write_outputs
from tests.support.process_groups import stop_group
from tests.support.ssh_gateway import SshGateway, make_ssh_key, running_ssh_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshGateway]:
    with running_ssh_gateway(tmp_path_factory.mktemp("ssh-gateway")) as running:
        yield running


@pytest.fixture
def outputs(gateway: SshGateway, tmp_path: Path) -> Path:
    document = make_outputs()
    document["tenants"]["alice"]["sshHost"] = gateway.host
    return write_outputs(tmp_path / "outputs.json", document)


def ops_env(gateway: SshGateway, tmp_path: Path, **overrides: str) -> dict[str, str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("OPENCLAW_OPS_") and key != "SSH_AUTH_SOCK"
    }
    environ |= {
        "OPENCLAW_OPS_SSH_PORT": str(gateway.tls_port),
        "OPENCLAW_OPS_SSH_CA_FILE": str(gateway.ca_file),
        "OPENCLAW_OPS_KNOWN_HOSTS": str(tmp_path / "known_hosts"),
        # The developer's ~/.ssh/config must not change what the test runs.
        "OPENCLAW_OPS_SSH_CONFIG": "/dev/null",
    }
    return environ | overrides


def exec_args(outputs: Path, gateway: SshGateway, *command: str) -> list[str]:
    return [
        "exec",
        "alice",
        "--outputs",
        str(outputs),
        "--identity",
        str(gateway.client_key),
        "--",
        *command,
    ]


def test_exec_runs_the_command_in_the_container_and_passes_its_exit_status_through(
    gateway: SshGateway, outputs: Path, tmp_path: Path
) -> None:
    env = ops_env(gateway, tmp_path)
    hello = run_ops(*exec_args(outputs, gateway, "echo", "hello-from-cvm"), env=env)
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout == "hello-from-cvm\n"
    failing = run_ops(*exec_args(outputs, gateway, "exit 7"), env=env)
    assert failing.returncode == 7, failing.stderr


def test_exec_remembers_the_host_key_on_first_use_in_its_own_known_hosts(
    gateway: SshGateway, outputs: Path, tmp_path: Path
) -> None:
    env = ops_env(gateway, tmp_path)
    result = run_ops(*exec_args(outputs, gateway, "true"), env=env)
    assert result.returncode == 0, result.stderr
    known = (tmp_path / "known_hosts").read_text()
    assert f"[{gateway.host}]:{gateway.tls_port} {gateway.host_public_key}" in known
    assert (tmp_path / "known_hosts").stat().st_mode & 0o077 == 0


def test_exec_refuses_a_changed_host_key_until_reset(
    gateway: SshGateway, outputs: Path, tmp_path: Path
) -> None:
    other_key = make_ssh_key(tmp_path / "impostor_host_key")
    impostor = " ".join(Path(f"{other_key}.pub").read_text().split()[:2])
    (tmp_path / "known_hosts").write_text(f"[{gateway.host}]:{gateway.tls_port} {impostor}\n")
    env = ops_env(gateway, tmp_path)
    refused = run_ops(*exec_args(outputs, gateway, "echo", "reached"), env=env)
    assert refused.returncode == 255
    assert "reached" not in refused.stdout
    assert "HOST IDENTIFICATION HAS CHANGED" in refused.stderr

    args = exec_args(outputs, gateway, "echo", "reached")
    args.insert(args.index("--"), "--reset-host-key")
    reset = run_ops(*args, env=env)
    assert reset.returncode == 0, reset.stderr
    assert reset.stdout == "reached\n"


def test_exec_refuses_a_gateway_certificate_it_cannot_verify(
    gateway: SshGateway, outputs: Path, tmp_path: Path
) -> None:
    # Without the test CA the system trust store is used, which does not know
    # the throwaway CA: the ProxyCommand must end the connection.
    env = ops_env(gateway, tmp_path)
    del env["OPENCLAW_OPS_SSH_CA_FILE"]
    result = run_ops(*exec_args(outputs, gateway, "echo", "reached"), env=env)
    assert result.returncode == 255
    assert "reached" not in result.stdout
    assert "verify" in result.stderr.lower()


def test_exec_with_a_key_the_cvm_does_not_authorize_is_refused(
    gateway: SshGateway, outputs: Path, tmp_path: Path
) -> None:
    stranger = make_ssh_key(tmp_path / "stranger")
    args = exec_args(outputs, gateway, "echo", "reached")
    args[args.index("--identity") + 1] = str(stranger)
    result = run_ops(*args, env=ops_env(gateway, tmp_path))
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_exec_uses_the_operators_ssh_agent_when_no_identity_is_given(
    gateway: SshGateway, outputs: Path, tmp_path: Path
) -> None:
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(socket_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        env = ops_env(gateway, tmp_path, SSH_AUTH_SOCK=str(socket_path))
        deadline = time.monotonic() + 20  # the agent creates its socket right after start
        while not socket_path.exists() and agent.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        subprocess.run(
            ["ssh-add", "-q", str(gateway.client_key)], env=env, check=True, capture_output=True
        )
        args = exec_args(outputs, gateway, "echo", "via-agent")
        del args[args.index("--identity") : args.index("--identity") + 2]
        result = run_ops(*args, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "via-agent\n"
    finally:
        stop_group(agent)


def test_ssh_without_a_terminal_runs_the_shell_on_stdin_and_passes_its_status(
    gateway: SshGateway, outputs: Path, tmp_path: Path
) -> None:
    result = run_ops(
        "ssh",
        "alice",
        "--outputs",
        str(outputs),
        "--identity",
        str(gateway.client_key),
        env=ops_env(gateway, tmp_path),
        stdin="echo shell-on-stdin\nexit 3\n",
    )
    assert result.returncode == 3, result.stderr
    assert "shell-on-stdin" in result.stdout


def test_cp_pull_copies_a_remote_folder_into_a_local_folder(
    gateway: SshGateway, outputs: Path, tmp_path: Path
) -> None:
    # The "container" is this machine's sshd, so the remote tree is a local path.
    remote = tmp_path / "remote" / ".openclaw"
    (remote / "agents" / "main").mkdir(parents=True)
    (remote / "openclaw.json").write_text('{"gateway": {}}\n')
    (remote / "agents" / "main" / "memory.db").write_bytes(bytes(range(256)) * 40)
    destination = tmp_path / "backup"
    result = run_ops(
        "cp",
        "alice",
        "pull",
        str(remote),
        str(destination),
        "--outputs",
        str(outputs),
        "--identity",
        str(gateway.client_key),
        env=ops_env(gateway, tmp_path),
    )
    assert result.returncode == 0, result.stderr
    pulled = destination / ".openclaw"
    assert (pulled / "openclaw.json").read_text() == '{"gateway": {}}\n'
    assert (pulled / "agents" / "main" / "memory.db").read_bytes() == bytes(range(256)) * 40


def test_cp_push_copies_a_local_folder_into_a_remote_folder(
    gateway: SshGateway, outputs: Path, tmp_path: Path
) -> None:
    local = tmp_path / "restore"
    (local / "nested").mkdir(parents=True)
    (local / "nested" / "state.txt").write_text("pushed state\n")
    remote_dir = tmp_path / "remote-root" / "data"
    result = run_ops(
        "cp",
        "alice",
        "push",
        str(local),
        str(remote_dir),
        "--outputs",
        str(outputs),
        "--identity",
        str(gateway.client_key),
        env=ops_env(gateway, tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert (remote_dir / "restore" / "nested" / "state.txt").read_text() == "pushed state\n"


def test_cp_pull_of_a_missing_remote_path_is_one_line_and_exit_1(
    gateway: SshGateway, outputs: Path, tmp_path: Path
) -> None:
    result = run_ops(
        "cp",
        "alice",
        "pull",
        str(tmp_path / "does-not-exist"),
        str(tmp_path / "dest"),
        "--outputs",
        str(outputs),
        "--identity",
        str(gateway.client_key),
        env=ops_env(gateway, tmp_path),
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: cp pull tenant 'alice': the remote tar failed")
    assert "Traceback" not in result.stderr


def test_unknown_tenant_is_a_one_line_config_error(
    gateway: SshGateway, outputs: Path, tmp_path: Path
) -> None:
    result = run_ops(
        *["exec", "mallory", "--outputs", str(outputs), "--", "true"],
        env=ops_env(gateway, tmp_path),
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: stack outputs have no tenant 'mallory'; known tenants: alice, carol"
    ]


def test_bad_port_knob_names_the_variable(
    gateway: SshGateway, outputs: Path, tmp_path: Path
) -> None:
    env = ops_env(gateway, tmp_path, OPENCLAW_OPS_SSH_PORT="443x")
    result = run_ops(*exec_args(outputs, gateway, "true"), env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: OPENCLAW_OPS_SSH_PORT must be a port number 1-65535, got '443x'"
    )


def test_production_command_is_the_seeds_proxy_on_443_with_verification() -> None:
    settings = SshSettings(
        port=443,
        ca_file=None,
        known_hosts=Path("/home/op/.config/openclaw-phala/known_hosts"),
        ssh_config=None,
        identity=None,
    )
    host = "43069de20638d656a2d0e49fb074bee1049bc90e-1022.dstack-pha-prod9.phala.network"
    command = ssh_command(host, settings)
    assert command[:3] == ["ssh", "-p", "443"]
    assert command[-1] == f"root@{host}"
    assert f"ProxyCommand={proxy_command(settings)}" in command
    assert proxy_command(settings) == (
        "openssl s_client -quiet -connect %h:%p -servername %h "
        "-verify_return_error -verify_hostname %h"
    )
    assert "StrictHostKeyChecking=accept-new" in command
    assert "UserKnownHostsFile=/home/op/.config/openclaw-phala/known_hosts" in command
    # No key is chosen for the operator: ssh's own agent/key selection applies.
    assert "-i" not in command and "IdentitiesOnly=yes" not in command


def test_mux_target_uses_the_mux_app_id_on_the_ssh_port() -> None:
    outputs = parse_stack_outputs(make_outputs())
    target = resolve_target(outputs, "mux")
    assert target.ssh_host == "b" * 40 + "-1022.dstack-pha-prod9.phala.network"
    assert target.cvm_id == "cvm-mux-uuid"
    assert target.container == "mux-server"
    assert resolve_target(outputs, "alice").container == "openclaw"


def test_interrupting_an_exec_stops_it_without_a_traceback(
    gateway: SshGateway, outputs: Path, tmp_path: Path
) -> None:
    process = start_ops(
        *exec_args(outputs, gateway, "echo started; sleep 60"), env=ops_env(gateway, tmp_path)
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "started\n"
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C at the terminal sends
        _, stderr = process.communicate(timeout=60)
        assert process.returncode != 0
        assert "Traceback" not in stderr
    finally:
        stop_group(process)


def test_ssh_on_a_terminal_gets_an_interactive_remote_shell(
    gateway: SshGateway, outputs: Path, tmp_path: Path
) -> None:
    # A pseudo-terminal as stdin/stdout: `ops ssh` must ask ssh for a remote tty
    # (as the seed's cvm-ssh -t did), so the remote shell is interactive.
    import pty
    import select

    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ops",
            "ssh",
            "alice",
            "--outputs",
            str(outputs),
            "--identity",
            str(gateway.client_key),
        ],
        cwd=REPO,
        env=ops_env(gateway, tmp_path) | {"TERM": "dumb", "PS1": "$ "},
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
    )
    os.close(secondary)
    seen = b""
    try:
        os.write(primary, b"tty -s && echo remote-has-a-tty-$((6*7)); exit 5\n")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:  # the terminal closed: every process on it exited
                    break
                if not chunk:
                    break
                seen += chunk
            elif process.poll() is not None:
                break
        assert process.wait(timeout=30) == 5, seen.decode(errors="replace")
        assert b"remote-has-a-tty-42" in seen
    finally:
        os.close(primary)
        stop_group(process)


def test_cp_pull_into_a_path_that_is_a_file_is_a_config_error(
    gateway: SshGateway, outputs: Path, tmp_path: Path
) -> None:
    occupied = tmp_path / "occupied"
    occupied.write_text("not a folder")
    result = run_ops(
        *["cp", "alice", "pull", str(tmp_path), str(occupied), "--outputs", str(outputs)],
        env=ops_env(gateway, tmp_path),
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: cp pull: '{occupied}' exists and is not a folder"

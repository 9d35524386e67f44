"""A loopback stand-in for a CVM's SSH path: Phala's TLS gateway in front of the container sshd.

Faithful to the path the seed's cvm-ssh takes: a TLS listener (Debian's stunnel4,
standing in for the dstack gateway on 443, which terminates TLS with a certificate
for the host name and forwards the plain stream) in front of a real OpenSSH sshd
(Debian's openssh-server, standing in for the container's sshd published on 1022),
with public-key login as root only. Not faithful to: the gateway's SNI routing by
`<app_id>-<port>` (there is one backend here) and its public certificate (a
throwaway CA made per run stands in; tests hand it to ops via
OPENCLAW_OPS_SSH_CA_FILE).

Everything binds 127.0.0.1 on free ports; both daemons run in the foreground in
their own process groups and are stopped by process-group id.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.loopback_tls import make_tls_files
from tests.support.process_groups import stop_group

LOOPBACK = "127.0.0.1"
TLS_HOST_NAME = "localhost"  # the certificate's name; resolves to loopback everywhere
SSHD = "/usr/sbin/sshd"
STUNNEL = "stunnel4"
READY_TIMEOUT_SEC = 20


@dataclass(frozen=True)
class SshGateway:
    host: str  # what the stack outputs' sshHost is set to
    tls_port: int
    sshd_port: int
    ca_file: Path
    client_key: Path  # authorized on the sshd
    host_public_key: str  # "ssh-ed25519 AAAA..."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def make_ssh_key(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "throwaway", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SEC
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited early: {log.read_text()[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex((LOOPBACK, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{process.args[0]} did not listen on {port}: {log.read_text()[-2000:]}")


def start_in_own_group(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as log_handle:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@contextmanager
def running_ssh_gateway(directory: Path) -> Iterator[SshGateway]:
    """sshd and stunnel4 on loopback, for the duration of the `with` block."""
    directory.mkdir(parents=True, exist_ok=True)
    host_key = make_ssh_key(directory / "host_ed25519")
    client_key = make_ssh_key(directory / "client_ed25519")
    authorized = directory / "authorized_keys"
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    authorized.chmod(0o600)
    tls = make_tls_files(directory, TLS_HOST_NAME, ca_name="ops-test throwaway CA")
    ca_file, cert_file, key_file = tls.ca_file, tls.cert_file, tls.key_file
    # sshd refuses to start without its privilege-separation directory; the
    # Debian package creates it at service start, which we do not use.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    sshd_port, tls_port = free_port(), free_port()
    sshd_config = directory / "sshd_config"
    sshd_config.write_text(
        "\n".join(
            [
                f"Port {sshd_port}",
                f"ListenAddress {LOOPBACK}",
                f"HostKey {host_key}",
                f"PidFile {directory / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "UsePAM no",
                "StrictModes no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    stunnel_config = directory / "stunnel.conf"
    stunnel_config.write_text(
        "\n".join(
            [
                "foreground = yes",
                "pid =",
                "debug = notice",
                "[gateway]",
                f"accept = {LOOPBACK}:{tls_port}",
                f"connect = {LOOPBACK}:{sshd_port}",
                f"cert = {cert_file}",
                f"key = {key_file}",
                "",
            ]
        )
    )
    sshd_log, stunnel_log = directory / "sshd.log", directory / "stunnel.log"
    sshd = start_in_own_group([SSHD, "-D", "-e", "-f", str(sshd_config)], sshd_log)
    stunnel: subprocess.Popen[bytes] | None = None
    try:
        wait_listening(sshd_port, sshd, sshd_log)
        stunnel = start_in_own_group([STUNNEL, str(stunnel_config)], stunnel_log)
        wait_listening(tls_port, stunnel, stunnel_log)
        yield SshGateway(
            host=TLS_HOST_NAME,
            tls_port=tls_port,
            sshd_port=sshd_port,
            ca_file=ca_file,
            client_key=client_key,
            host_public_key=" ".join(Path(f"{host_key}.pub").read_text().split()[:2]),
        )
    finally:
        if stunnel is not None:
            stop_group(stunnel)
        stop_group(sshd)

"""`ops ssh`, `ops exec` and `ops cp`: reach a CVM's container sshd by tenant name.

The seed's cvm-ssh/cvm-exec/cvm-scp needed ``CVM_SSH_HOST`` exported by hand; here
the host comes from the stack outputs (ops/targets.py). The connection is the
seed's: the gateway terminates TLS on 443 for ``<app_id>-1022.<base domain>`` and
forwards the stream to the container's sshd (published as 1022), so ssh runs
through ``openssl s_client -quiet -connect <host>:443 -servername <host>`` as its
ProxyCommand. Two things differ from the seed, both on purpose:

* TLS is verified: ``-verify_return_error -verify_hostname <host>`` against the
  system trust store. The seed's s_client printed a verification failure and went
  on; here a wrong certificate ends the connection.
* Host keys are trusted on first use (``StrictHostKeyChecking=accept-new``) and
  remembered in our own known_hosts file, instead of the seed's
  ``StrictHostKeyChecking=no`` + ``/dev/null``, which accepted any key every time.
  A dev-OS CVM has no host key the operator knows in advance, so the first
  connection to a host is authenticated only by the verified TLS hop to the
  gateway; later connections refuse a changed key until the operator runs with
  ``--reset-host-key`` (needed after a rollout that changed the image's key).

Only the operator's own credentials authenticate: ssh's defaults (agent and
~/.ssh keys) or ``--identity FILE`` (then ``IdentitiesOnly=yes``). Nothing here
creates, copies or reads a key.

Environment knobs, for tests and unusual networks (never needed in production):
  OPENCLAW_OPS_SSH_PORT      port the ProxyCommand connects to (default 443)
  OPENCLAW_OPS_SSH_CA_FILE   trust this CA file instead of the system store
  OPENCLAW_OPS_KNOWN_HOSTS   known_hosts file (default
                             ${XDG_CONFIG_HOME:-~/.config}/openclaw-phala/known_hosts)
  OPENCLAW_OPS_SSH_CONFIG    ssh_config passed as `ssh -F` (tests: /dev/null)
"""

from __future__ import annotations

import argparse
import os
import posixpath
import shlex
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, Final, TextIO

from ops import ConfigError, OperationError
from ops.attached import exit_status, run_attached
from ops.stack_outputs import StackOutputs
from ops.targets import CvmTarget, resolve_target

PORT_VAR: Final = "OPENCLAW_OPS_SSH_PORT"
CA_FILE_VAR: Final = "OPENCLAW_OPS_SSH_CA_FILE"
KNOWN_HOSTS_VAR: Final = "OPENCLAW_OPS_KNOWN_HOSTS"
SSH_CONFIG_VAR: Final = "OPENCLAW_OPS_SSH_CONFIG"
GATEWAY_TLS_PORT: Final = 443
REMOTE_USER: Final = "root"  # the container's sshd: PermitRootLogin prohibit-password
CONNECT_TIMEOUT_SEC: Final = 30
# ssh exits 255 for its own failures (connection, authentication, host key).
SSH_FAILURE_STATUS: Final = 255

OutputsLoader = Callable[[argparse.Namespace], StackOutputs]


@dataclass(frozen=True)
class SshSettings:
    port: int
    ca_file: Path | None
    known_hosts: Path
    ssh_config: str | None
    identity: Path | None


def default_known_hosts(environ: Mapping[str, str]) -> Path:
    config_home = environ.get("XDG_CONFIG_HOME") or str(
        Path(environ.get("HOME") or Path.home()) / ".config"
    )
    return Path(config_home) / "openclaw-phala" / "known_hosts"


def settings_from_environment(environ: Mapping[str, str], identity: Path | None) -> SshSettings:
    port_text = environ.get(PORT_VAR, "").strip()
    port = GATEWAY_TLS_PORT
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ConfigError(f"{PORT_VAR} must be a port number 1-65535, got {port_text!r}")
        port = int(port_text)
    ca_text = environ.get(CA_FILE_VAR, "").strip()
    ca_file = Path(ca_text) if ca_text else None
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(f"{CA_FILE_VAR} names {ca_text!r}, which is not a readable file")
    if identity is not None and not identity.is_file():
        raise ConfigError(f"--identity: {str(identity)!r} is not a file")
    known_hosts_text = environ.get(KNOWN_HOSTS_VAR, "").strip()
    known_hosts = Path(known_hosts_text) if known_hosts_text else default_known_hosts(environ)
    return SshSettings(
        port=port,
        ca_file=ca_file,
        known_hosts=known_hosts,
        ssh_config=environ.get(SSH_CONFIG_VAR, "").strip() or None,
        identity=identity,
    )


def proxy_command(settings: SshSettings) -> str:
    """The seed's ProxyCommand, with the gateway's certificate verified.

    ssh expands %h/%p itself; the CA path is shell-quoted because ssh hands the
    whole string to the user's shell.
    """
    words = [
        "openssl s_client -quiet -connect %h:%p -servername %h",
        "-verify_return_error -verify_hostname %h",
    ]
    if settings.ca_file is not None:
        words.append(f"-CAfile {shlex.quote(str(settings.ca_file))}")
    return " ".join(words)


def ssh_command(
    host: str, settings: SshSettings, *, tty: bool | None = None, extra: Sequence[str] = ()
) -> list[str]:
    """ssh argv up to and including the destination; a remote command may follow."""
    command = ["ssh"]
    if settings.ssh_config is not None:
        command += ["-F", settings.ssh_config]
    command += [
        "-p",
        str(settings.port),
        "-o",
        f"ProxyCommand={proxy_command(settings)}",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-o",
        f"UserKnownHostsFile={settings.known_hosts}",
        "-o",
        f"ConnectTimeout={CONNECT_TIMEOUT_SEC}",
    ]
    if settings.identity is not None:
        command += ["-i", str(settings.identity), "-o", "IdentitiesOnly=yes"]
    if tty is True:
        command.append("-t")
    elif tty is False:
        command.append("-T")
    command += [*extra, f"{REMOTE_USER}@{host}"]
    return command


def known_hosts_entry(host: str, port: int) -> str:
    # How ssh names a host on a non-default port in known_hosts.
    return host if port == 22 else f"[{host}]:{port}"


def prepare_known_hosts(path: Path) -> None:
    # Our own file (not ~/.ssh/known_hosts): CVM keys come and go with rollouts
    # and should not mix with the operator's other hosts.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(descriptor)


def forget_host_key(host: str, settings: SshSettings, stderr: TextIO) -> None:
    entry = known_hosts_entry(host, settings.port)
    completed = subprocess.run(
        ["ssh-keygen", "-R", entry, "-f", str(settings.known_hosts)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        reason = (completed.stderr.strip().splitlines() or ["no message"])[-1]
        raise OperationError(f"could not remove the host key of {entry}: {reason}")
    print(f"ops: forgot the remembered host key of {entry}", file=stderr)


def require_tools(*names: str) -> None:
    for name in names:
        if shutil.which(name) is None:
            raise ConfigError(f"{name!r} is not on PATH; install openssh-client and openssl")


@dataclass(frozen=True)
class Connection:
    target: CvmTarget
    settings: SshSettings

    def command(self, *, tty: bool | None = None, remote: Sequence[str] = ()) -> list[str]:
        return [*ssh_command(self.target.ssh_host, self.settings, tty=tty), *remote]


def connect(
    arguments: argparse.Namespace, load_outputs: OutputsLoader, stderr: TextIO
) -> Connection:
    require_tools("ssh", "openssl")
    settings = settings_from_environment(os.environ, arguments.identity)
    target = resolve_target(load_outputs(arguments), arguments.name)
    prepare_known_hosts(settings.known_hosts)
    if arguments.reset_host_key:
        forget_host_key(target.ssh_host, settings, stderr)
    return Connection(target, settings)


# --- commands ---------------------------------------------------------------------


def run_ssh(
    arguments: argparse.Namespace, _stdout: TextIO, stderr: TextIO, *, load_outputs: OutputsLoader
) -> int:
    connection = connect(arguments, load_outputs, stderr)
    # Like cvm-ssh's -t, but only when there is a terminal to give the remote
    # shell; from a pipe, the remote shell reads commands from stdin instead.
    tty = sys.stdin.isatty()
    return exit_status(run_attached(connection.command(tty=tty)).returncode)


def run_exec(
    arguments: argparse.Namespace, _stdout: TextIO, stderr: TextIO, *, load_outputs: OutputsLoader
) -> int:
    if not arguments.remote_command:
        raise ConfigError(
            "exec: give the command after '--', e.g. exec alice -- openclaw --version"
        )
    connection = connect(arguments, load_outputs, stderr)
    # ssh joins the words with spaces and the remote shell parses the result,
    # exactly as `ssh host cmd...` (and the seed's cvm-exec) does: quote for it.
    process = run_attached(connection.command(tty=False, remote=arguments.remote_command))
    return exit_status(process.returncode)


def remote_parent_and_name(remote_path: str) -> tuple[str, str]:
    cleaned = posixpath.normpath(remote_path)
    name = posixpath.basename(cleaned)
    if not remote_path or name in ("", ".", "..", "/"):
        raise ConfigError(f"cp: remote path {remote_path!r} must name a file or folder")
    return posixpath.dirname(cleaned) or ".", name


def _collect(stream: IO[bytes], sink: list[bytes]) -> threading.Thread:
    thread = threading.Thread(target=lambda: sink.append(stream.read()), daemon=True)
    thread.start()
    return thread


def _last_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line and not line.startswith("Warning: Permanently added")]
    return lines[-1][:300] if lines else "no message"


def _failure(connection: Connection, action: str, returncode: int, stderr_data: bytes) -> str:
    status = exit_status(returncode)
    where = (
        "ssh could not connect"
        if status == SSH_FAILURE_STATUS
        else f"the remote tar failed (exit {status})"
    )
    return f"cp {action} {connection.target.label}: {where}: {_last_line(stderr_data)}"


@contextmanager
def _tar_stream(
    connection: Connection, action: str, remote: str, *, sending: bool
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `remote` over ssh with the tar stream on its stdin (sending) or its stdout.
    On leaving, the ssh is waited for (killed if the block ended early) and a non-zero
    exit becomes an OperationError naming the action and ssh's last stderr line."""
    process = subprocess.Popen(
        connection.command(tty=False, remote=[remote]),
        stdin=subprocess.PIPE if sending else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL if sending else subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    errors: list[bytes] = []
    reader = _collect(process.stderr, errors)
    try:
        yield process
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=10)
    if process.returncode != 0:
        raise OperationError(_failure(connection, action, process.returncode, b"".join(errors)))


def copy_pull(connection: Connection, remote_path: str, local_dir: Path, stderr: TextIO) -> int:
    parent, name = remote_parent_and_name(remote_path)
    if local_dir.exists() and not local_dir.is_dir():
        raise ConfigError(f"cp pull: {str(local_dir)!r} exists and is not a folder")
    try:
        local_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cp pull: cannot create {str(local_dir)!r}: {error.strerror}") from None
    remote = f"tar -C {shlex.quote(parent)} -cf - -- {shlex.quote(name)}"
    members = 0
    with _tar_stream(connection, "pull", remote, sending=False) as process:
        assert process.stdout is not None
        try:
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                for member in archive:
                    # The "data" filter refuses absolute paths, "..", links out of
                    # the folder and device files: the CVM is not trusted to write
                    # outside local_dir.
                    archive.extract(member, local_dir, filter="data")
                    members += 1
        except OSError as error:
            raise OperationError(
                f"cp pull {connection.target.label}: cannot write into {str(local_dir)!r}: "
                f"{error.strerror or error}"
            ) from None
        except tarfile.TarError as error:
            # A failed ssh also leaves a broken stream; only a clean exit blames the tar.
            if process.wait() == 0:
                raise OperationError(
                    f"cp pull {connection.target.label}: the tar stream is unreadable: {error}"
                ) from None
    print(
        f"ops: copied {remote_path} from {connection.target.label} into {local_dir} "
        f"({members} entries)",
        file=stderr,
    )
    return 0


def copy_push(connection: Connection, local_path: Path, remote_dir: str, stderr: TextIO) -> int:
    if not local_path.exists():
        raise ConfigError(f"cp push: local path {str(local_path)!r} does not exist")
    if not remote_dir:
        raise ConfigError("cp push: the remote folder must not be empty")
    name = local_path.resolve().name
    quoted_dir = shlex.quote(remote_dir)
    # --no-same-owner: files belong to the remote user, not to our local uid.
    remote = f"mkdir -p -- {quoted_dir} && tar -C {quoted_dir} --no-same-owner -xf -"
    with _tar_stream(connection, "push", remote, sending=True) as process:
        assert process.stdin is not None
        try:
            with tarfile.open(fileobj=process.stdin, mode="w|") as archive:
                archive.add(local_path, arcname=name)
        except (BrokenPipeError, ConnectionResetError):
            pass  # ssh went away: its exit status and stderr say why
        finally:
            with suppress(BrokenPipeError):
                process.stdin.close()
    print(
        f"ops: copied {local_path} into {remote_dir} on {connection.target.label}",
        file=stderr,
    )
    return 0


def run_cp(
    arguments: argparse.Namespace, _stdout: TextIO, stderr: TextIO, *, load_outputs: OutputsLoader
) -> int:
    connection = connect(arguments, load_outputs, stderr)
    if arguments.direction == "pull":
        return copy_pull(connection, arguments.source, Path(arguments.destination), stderr)
    return copy_push(connection, Path(arguments.source), arguments.destination, stderr)


# --- parsers ----------------------------------------------------------------------


def _take_command_after_dashes(parser: argparse.ArgumentParser) -> None:
    """Everything after the first '--' becomes `remote_command`, untouched.

    A trailing nargs='*' positional cannot do this: argparse fills it (empty)
    together with `name`, before it has seen the options and the '--'.
    """
    base = type(parser)

    class CommandAfterDashes(base):  # type: ignore[valid-type, misc]
        def parse_known_args(  # type: ignore[override]
            self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
        ) -> tuple[argparse.Namespace, list[str]]:
            words = list(sys.argv[1:] if args is None else args)
            split = words.index("--") if "--" in words else len(words)
            parsed, extras = super().parse_known_args(words[:split], namespace)
            parsed.remote_command = words[split + 1 :]
            return parsed, extras

    parser.__class__ = CommandAfterDashes
    parser.usage = "%(prog)s [options] name -- COMMAND [ARG...]"


def _add_connection_options(
    parser: argparse.ArgumentParser, add_outputs_source: Callable[[argparse.ArgumentParser], None]
) -> None:
    parser.add_argument("name", help="tenant name as in the stack outputs, or 'mux'")
    parser.add_argument(
        "--identity",
        type=Path,
        metavar="FILE",
        help="use only this private key of yours (default: your ssh agent and ~/.ssh keys)",
    )
    parser.add_argument(
        "--reset-host-key",
        action="store_true",
        help="forget the remembered host key of this CVM first (after a rollout changed it)",
    )
    add_outputs_source(parser)


def add_parsers(
    commands: argparse._SubParsersAction[Any],
    add_outputs_source: Callable[[argparse.ArgumentParser], None],
    load_outputs: OutputsLoader,
) -> None:
    ssh = commands.add_parser(
        "ssh",
        help="interactive shell in a CVM's container",
        description="Open a shell in the container of a tenant (or 'mux') over the gateway's "
        "TLS port, as the seed's cvm-ssh did, with the host from the stack outputs.",
    )
    _add_connection_options(ssh, add_outputs_source)
    ssh.set_defaults(handler=partial(run_ssh, load_outputs=load_outputs))

    exec_parser = commands.add_parser(
        "exec",
        help="run one command in a CVM's container; its exit status is ours",
        description="Run a command in the container, like the seed's cvm-exec. The words "
        "after '--' are joined with spaces and run by the remote shell. Exit status: the "
        "command's, or 255 when ssh itself failed.",
    )
    _add_connection_options(exec_parser, add_outputs_source)
    _take_command_after_dashes(exec_parser)
    exec_parser.set_defaults(handler=partial(run_exec, load_outputs=load_outputs))

    cp = commands.add_parser(
        "cp",
        help="copy a file or folder from (pull) or to (push) a CVM's container",
        description="Copy through a tar stream over ssh, like the seed's cvm-scp. "
        "'pull REMOTE LOCAL-DIR' puts REMOTE's file or folder inside LOCAL-DIR; "
        "'push LOCAL REMOTE-DIR' puts LOCAL inside REMOTE-DIR (both created if missing).",
    )
    cp.add_argument("name", help="tenant name as in the stack outputs, or 'mux'")
    cp.add_argument("direction", choices=("pull", "push"))
    cp.add_argument("source", help="remote path (pull) or local path (push)")
    cp.add_argument("destination", help="local folder (pull) or remote folder (push)")
    cp.add_argument("--identity", type=Path, metavar="FILE", help="use only this private key")
    cp.add_argument(
        "--reset-host-key", action="store_true", help="forget the remembered host key first"
    )
    add_outputs_source(cp)
    cp.set_defaults(handler=partial(run_cp, load_outputs=load_outputs))

"""``python -m ops``: day-2 operations on an openclaw-phala stack.

Commands:
  pair <tenant> <channel>              mint a mux pairing token for a tenant
  backup pull <tenant> <dest-dir>      download and decrypt a tenant's S3 state
  backup restore <tenant> <src-dir>    encrypt a pulled folder into the tenant's bucket
  status                               compare every CVM with what Phala reports (drift)
  ssh <name>                           shell in a tenant's (or mux's) container
  exec <name> -- <command...>          run a command there; its exit status is ours
  cp <name> pull|push <src> <dst>      copy files through a tar stream over ssh
  logs <name> [--tail N] [--follow]    container logs through the pinned phala CLI
  pin-image <repo>:<tag> [--set KEY]   the digest a pull of the tag gets, as repo@sha256:...

Exit status: 0 success, 2 usage or configuration error, 1 the operation failed.
`status`: 0 every CVM ok, 1 drift, 3 no drift but a CVM could not be read (unknown).
Every expected failure is one line on stderr and never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import NoReturn, TextIO

from ops import ConfigError, OpsError
from ops.pairing import (
    DEFAULT_HTTP_TIMEOUT_SEC,
    DEFAULT_INBOUND_TIMEOUT_MS,
    DEFAULT_TTL_SEC,
    SUPPORTED_CHANNELS,
    PairingRequest,
    check_channel_is_served,
    format_pairing_token,
    mint_pairing_token,
    validate_pairing_options,
)
from ops.stack_outputs import (
    StackOutputs,
    load_stack_outputs_file,
    load_stack_outputs_from_pulumi,
)

PROG = "python -m ops"
# Set to get a traceback for an unexpected error (never for expected ones).
DEBUG_ENV = "OPS_DEBUG"


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so usage
    errors also come out as one line with exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message} (see --help)")


def _add_outputs_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--outputs",
        metavar="FILE",
        type=Path,
        help="read stack outputs from this JSON file "
        "(saved 'pulumi stack output --json --show-secrets')",
    )
    source.add_argument(
        "--stack",
        metavar="NAME",
        help="run 'pulumi stack output' for this stack (default: the selected stack)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


MAX_HTTP_TIMEOUT_SEC = 3600.0  # beyond this a socket timeout overflows or never ends


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    if not value <= MAX_HTTP_TIMEOUT_SEC:  # also refuses inf and nan
        raise argparse.ArgumentTypeError(
            f"must be at most {MAX_HTTP_TIMEOUT_SEC:g} seconds, got {text}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Day-2 operations on an openclaw-phala stack.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    pair = commands.add_parser(
        "pair",
        help="mint a mux pairing token for a tenant",
        description="Mint a one-time mux pairing token that binds a chat to the tenant.",
    )
    pair.add_argument("tenant", help="tenant name as in the stack outputs")
    pair.add_argument("channel", choices=SUPPORTED_CHANNELS, help="chat channel to pair")
    pair.add_argument("--session-key", metavar="KEY", help="session to bind, e.g. agent:main:main")
    pair.add_argument(
        "--ttl-sec",
        type=_positive_int,
        default=DEFAULT_TTL_SEC,
        metavar="N",
        help=f"token lifetime in seconds, at most 3600 (default {DEFAULT_TTL_SEC})",
    )
    pair.add_argument(
        "--inbound-timeout-ms",
        type=_positive_int,
        default=DEFAULT_INBOUND_TIMEOUT_MS,
        metavar="N",
        help="how long mux waits for the tenant's inbound endpoint "
        f"(default {DEFAULT_INBOUND_TIMEOUT_MS})",
    )
    pair.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_HTTP_TIMEOUT_SEC,
        metavar="SEC",
        help=f"HTTP timeout for the mux admin API (default {DEFAULT_HTTP_TIMEOUT_SEC:g})",
    )
    pair.add_argument(
        "--mux-url",
        metavar="URL",
        help="reach the mux admin API here instead of the outputs' mux baseUrl, e.g. "
        "http://127.0.0.1:18891 through an SSH tunnel (https, or http to loopback only)",
    )
    _add_outputs_source(pair)
    pair.set_defaults(handler=_run_pair)

    backup = commands.add_parser("backup", help="tenant state backups in S3")
    backup_commands = backup.add_subparsers(dest="backup_command", required=True, metavar="ACTION")
    pull = backup_commands.add_parser(
        "pull",
        help="download and decrypt a tenant's S3 state (disaster-recovery drill)",
        description="Download and decrypt one tenant's S3 state into a new local folder, "
        "using only the tenant's MASTER_KEY and the stack outputs. The master key is read "
        "from $OPENCLAW_MASTER_KEY or --master-key-file, never from the command line.",
    )
    pull.add_argument("tenant", help="tenant name as in the stack outputs")
    pull.add_argument("dest_dir", type=Path, metavar="dest-dir", help="new or empty folder")
    pull.add_argument(
        "--master-key-file",
        type=Path,
        metavar="FILE",
        help="file holding the tenant MASTER_KEY (mode 0600); default $OPENCLAW_MASTER_KEY",
    )
    _add_outputs_source(pull)
    pull.set_defaults(handler=_run_backup_pull)
    restore = backup_commands.add_parser(
        "restore",
        help="encrypt a pulled folder into the tenant's current bucket (after a move)",
        description="Encrypt a folder made by `backup pull` into the tenant's current S3 "
        "bucket and prefix, as its CVM would write it: how its state follows it to a new "
        "bucket or jurisdiction. The bucket must be empty there, or --overwrite replaces "
        "what is there (stop the CVM first). The master key is read from "
        "$OPENCLAW_MASTER_KEY or --master-key-file, never from the command line.",
    )
    restore.add_argument("tenant", help="tenant name as in the stack outputs")
    restore.add_argument("src_dir", type=Path, metavar="src-dir", help="a folder `pull` made")
    restore.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what the bucket holds under the tenant's prefix with the folder",
    )
    restore.add_argument(
        "--master-key-file",
        type=Path,
        metavar="FILE",
        help="file holding the tenant MASTER_KEY (mode 0600); default $OPENCLAW_MASTER_KEY",
    )
    _add_outputs_source(restore)
    restore.set_defaults(handler=_run_backup_restore)

    status = commands.add_parser(
        "status",
        help="compare every CVM with what Phala reports; exit 1 on drift, 3 on unknown",
        description="For each CVM in the stack outputs: does it exist, is it running, and "
        "is its compose hash the one Pulumi deployed. A CVM that cannot be read is "
        "reported as unknown and the check goes on. Exits 0 when every CVM is ok, 1 when "
        "anything drifted, 3 when nothing drifted but a CVM is unknown. "
        "Uses PHALA_CLOUD_API_KEY (or `phala login`).",
    )
    status.add_argument("--json", action="store_true", help="machine-readable result")
    _add_outputs_source(status)
    status.set_defaults(handler=_run_status)

    from ops import logs as logs_command  # day-2 by tenant name, one module per command
    from ops import pin_image as pin_image_command
    from ops import ssh as ssh_commands

    ssh_commands.add_parsers(commands, _add_outputs_source, _load_outputs)
    logs_command.add_parser(commands, _add_outputs_source, _load_outputs)
    pin_image_command.add_parser(commands)
    return parser


def _load_outputs(arguments: argparse.Namespace) -> StackOutputs:
    if arguments.outputs is not None:
        return load_stack_outputs_file(arguments.outputs)
    return load_stack_outputs_from_pulumi(arguments.stack)


def _run_pair(arguments: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    # Arguments are checked before the outputs are loaded: a typo should not
    # cost a `pulumi stack output` round trip.
    request_options = {
        "channel": arguments.channel,
        "inbound_timeout_ms": arguments.inbound_timeout_ms,
        "ttl_sec": arguments.ttl_sec,
        "session_key": arguments.session_key,
    }
    validate_pairing_options(**request_options)
    outputs = _load_outputs(arguments)
    tenant = outputs.tenant(arguments.tenant)
    mux, mux_secrets = outputs.require_mux()
    warning = check_channel_is_served(arguments.channel, mux.name, mux.channels)
    if warning is not None:
        print(warning, file=stderr)
    request = PairingRequest(
        openclaw_id=tenant.openclaw_id, inbound_url=tenant.inbound_url, **request_options
    )
    token = mint_pairing_token(
        arguments.mux_url or mux.base_url,
        mux_secrets.admin_token,
        request,
        timeout_sec=arguments.timeout,
    )
    print(format_pairing_token(tenant.name, token, datetime.now(tz=UTC)), file=stdout)
    return 0


def _run_backup_pull(arguments: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from ops.backup import pull_tenant_state, read_master_key

    master_key = read_master_key(arguments.master_key_file, os.environ)
    outputs = _load_outputs(arguments)
    tenant = outputs.tenant(arguments.tenant)
    result = pull_tenant_state(
        tenant,
        outputs.secrets_for(tenant.name),
        master_key,
        arguments.dest_dir,
        progress=lambda message: print(f"ops: {message}", file=stderr, flush=True),
    )
    print(
        f"restored tenant {result.tenant!r}: {result.file_count} files, "
        f"{result.total_bytes} bytes from {result.source}\n"
        f"  into {result.destination} (mode 0700: it is the tenant's plaintext state)",
        file=stdout,
    )
    return 0


def _run_backup_restore(arguments: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from ops.backup import read_master_key, restore_tenant_state

    master_key = read_master_key(arguments.master_key_file, os.environ)
    outputs = _load_outputs(arguments)
    tenant = outputs.tenant(arguments.tenant)
    result = restore_tenant_state(
        tenant,
        outputs.secrets_for(tenant.name),
        master_key,
        arguments.src_dir,
        overwrite=arguments.overwrite,
        progress=lambda message: print(f"ops: {message}", file=stderr, flush=True),
    )
    replaced = f", replacing {result.replaced_objects} objects" if result.replaced_objects else ""
    print(
        f"restored tenant {result.tenant!r}: {result.file_count} files, "
        f"{result.total_bytes} bytes into {result.destination}{replaced}",
        file=stdout,
    )
    return 0


def _run_status(arguments: argparse.Namespace, stdout: TextIO, _stderr: TextIO) -> int:
    from ops.status import (
        api_from_environment,
        check_stack,
        exit_status,
        render_json,
        render_table,
    )

    api = api_from_environment(os.environ)
    results = check_stack(_load_outputs(arguments), api)
    print(render_json(results) if arguments.json else render_table(results), file=stdout)
    return exit_status(results)


def _terminate_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # Unwinding through `finally` removes temp dirs and staging folders; the
    # default SIGTERM action would kill us without running any of it.
    raise SystemExit(128 + signum)


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        arguments = build_parser().parse_args(argv)
        code = int(arguments.handler(arguments, out, err))
        out.flush()  # a closed pipe shows here, inside the handling below, not at exit
        return code
    except OpsError as error:
        print(f"error: {error}", file=err)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=err)
        return 130
    except BrokenPipeError:
        # `ops status | head`: the reader left. Point stdout at /dev/null so the
        # interpreter's final flush cannot fail a second time.
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("error: output closed before everything was written (broken pipe)", file=err)
        return 1
    except Exception as error:
        if os.environ.get(DEBUG_ENV):
            raise
        # Only the type: an unexpected exception's message could quote a secret.
        print(
            f"error: unexpected {type(error).__name__}; rerun with {DEBUG_ENV}=1 for a traceback",
            file=err,
        )
        return 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate_on_sigterm)
    sys.exit(main())

"""`python -m sandbox up|down|status|rehearse` (run through `./scripts/sandbox`, which
installs what it needs first). See sandbox/__init__.py and the README's first section."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

from sandbox import lifecycle
from sandbox.engine import EngineUnavailableError
from sandbox.folder import FolderError, SandboxFolder, default_location
from sandbox.lifecycle import SandboxError
from sandbox.openclaw import OracleUnavailableError
from sandbox.plugins import PLUGIN_CHOICES
from sandbox.report import Progress
from sandbox.stack_files import StackFileError
from sandbox.up import Up
from sandbox.vendor_guard import environment_problems, refusal

PROG = "./scripts/sandbox"
# Exit status: 0 done, 1 a step failed, 2 refused (usage, environment, stack file),
# 3 (status) no sandbox runs.
EXIT_FAILED = 1
EXIT_REFUSED = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_REFUSED, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Try openclaw-phala without an account, and rehearse a change to your "
        "stack, against local Phala Cloud and Cloudflare APIs on 127.0.0.1.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    plugins_help = (
        "auto: the real provider plugins where your Pulumi plugin cache or PATH has them, "
        "else the local stand-ins; standins: always the stand-ins (default: auto)"
    )
    up = commands.add_parser(
        "up",
        help="start the local APIs, deploy the demo stack, start a tenant's gateway",
        description="Deploy the demo stack (a mux and three tenants) with the real engine "
        "into local APIs, and start one tenant's OpenClaw gateway. Again: fast, changes nothing.",
    )
    up.add_argument("--plugins", choices=PLUGIN_CHOICES, default="auto", help=plugins_help)
    commands.add_parser("status", help="what runs, `ops status` and the dashboard link")
    commands.add_parser("down", help="stop everything the sandbox started and remove its folder")
    rehearse = commands.add_parser(
        "rehearse",
        help="your stack and your change, end to end against local APIs",
        description="Deploy the stack as it runs today into fresh local APIs, then the "
        "change: prints each resource's operation, the calls to the Phala Cloud and "
        "Cloudflare APIs, and the outputs after. Nothing reaches a vendor.",
    )
    rehearse.add_argument("--stack", required=True, help="the stack (Pulumi.<stack>.yaml)")
    rehearse.add_argument(
        "--stack-file",
        type=Path,
        help="the stack file with the change (default: Pulumi.<stack>.yaml in this checkout)",
    )
    base = rehearse.add_mutually_exclusive_group()
    base.add_argument(
        "--base",
        metavar="REF",
        help="git ref whose stack file and program are deployed first (default: HEAD)",
    )
    base.add_argument(
        "--base-file",
        type=Path,
        metavar="FILE",
        help="a stack file deployed first, with this checkout's program",
    )
    base.add_argument(
        "--from-empty", action="store_true", help="deploy only the change, from nothing"
    )
    rehearse.add_argument("--plugins", choices=PLUGIN_CHOICES, default="auto", help=plugins_help)
    return parser


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM ends a command as Ctrl-C does, so it stops what it started.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    environ = dict(os.environ)
    # Everything the sandbox and what it starts write is its owner's alone.
    os.umask(0o077)
    signal.signal(signal.SIGTERM, _interrupted)
    command = str(arguments.command)
    progress = Progress("sandbox" if command != "rehearse" else "rehearse")
    if command in ("up", "rehearse"):
        problems = environment_problems(environ)
        if problems:
            print(refusal(command, problems), file=sys.stderr)
            return EXIT_REFUSED
    try:
        if command == "rehearse":
            from sandbox.rehearse import rehearse

            return rehearse(
                arguments.stack,
                stack_file=arguments.stack_file,
                ref=arguments.base,
                base_file=arguments.base_file,
                from_empty=arguments.from_empty,
                plugin_mode=arguments.plugins,
                environ=environ,
                progress=progress,
            )
        folder = SandboxFolder(default_location(environ))
        if command == "up":
            return Up(folder, environ, progress).run(arguments.plugins)
        if command == "status":
            return lifecycle.status(folder, environ, progress)
        return lifecycle.down(folder, progress)
    except (FolderError, StackFileError) as error:
        print(f"sandbox {command}: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except (SandboxError, EngineUnavailableError, OracleUnavailableError) as error:
        print(f"sandbox {command}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"sandbox {command}: interrupted; what it started is stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Offline plan for reviewers: no cloud credentials, no Pulumi CLI.

    python -m plan show [--stack prod] [--json]
    python -m plan diff BASE_REF HEAD_REF [--stack prod]

`show` evaluates the program under Pulumi's mock runtime, in preview mode, with
placeholders for every secret, and prints each resource's desired state. `diff`
runs `show --json` on a clean export of each git ref (each with its own code) and
prints what changes per tenant, flagging CVM replacements and local-volume data.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pulumi

from components.config_checks import misplaced_keys, outside_config_message
from components.config_keys import OBJECT_KEYS, PROJECT, SCALAR_KEYS
from components.settings import ConfigProblem, SettingsError
from plan.describe import FINGERPRINT_KEY_ENV, describe, render_plan
from plan.diff import diff_plans, render_diff, resource_changes
from plan.evaluate import REPO_ROOT, run_program
from plan.placeholders import offline_config, placeholder_mux_stack
from plan.stack_file import StackFileError, read_stack_file

# Set to get a traceback for an unexpected error (never for expected ones).
DEBUG_ENV = "PLAN_DEBUG"


class PlanError(Exception):
    pass


# Set by --stand-in-missing-secrets, and read from the environment too, so the `show`
# that `diff` runs at each ref inherits it (an older ref's code ignores it).
STAND_IN_MISSING_ENV = "OPENCLAW_PLAN_STAND_IN_MISSING_SECRETS"


def plan_blocks(stack: str, *, stand_in_missing: bool = False) -> list[dict[str, Any]]:
    if not (REPO_ROOT / f"Pulumi.{stack}.yaml").exists():
        raise PlanError(f"no stack file Pulumi.{stack}.yaml")
    try:
        offline = offline_config(stack, stand_in_missing=stand_in_missing)
        _refuse_misplaced_keys(stack)
    except StackFileError as error:
        raise PlanError(str(error)) from None
    except SettingsError as error:
        raise PlanError(f"stack {stack}: {error}") from None
    config = offline.config
    references = (
        {config["muxStack"]: placeholder_mux_stack(config["muxStack"])}
        if config.get("muxStack")
        else None
    )
    blocks = blocks_for(config, offline.secret_keys, stack, references)
    return [*not_set_blocks(offline.not_set), *blocks]


def _refuse_misplaced_keys(stack: str) -> None:
    """Keys meant for the project but under a mistyped namespace, which the program never
    reads: refused with a did-you-mean, as the program refuses them. Read as Pulumi reads
    the file, so a bare key is the project's own, not misplaced."""
    read = read_stack_file(REPO_ROOT / f"Pulumi.{stack}.yaml", PROJECT, REPO_ROOT / "Pulumi.yaml")
    known = [key.name for key in SCALAR_KEYS] + list(OBJECT_KEYS)
    for key in read.ignored_top_level:
        print(f"plan: warning: {outside_config_message(key, PROJECT, known)}", file=sys.stderr)
    misplaced = misplaced_keys(list(read.values), PROJECT, known)
    if misplaced:
        problems = [ConfigProblem(key, message, in_project=False) for key, message in misplaced]
        raise SettingsError(problems)


def not_set_blocks(not_set: list[str]) -> list[dict[str, Any]]:
    """One block per secret the plan stood in for, so no stand-in passes unnoticed."""
    return [
        {
            "kind": "secret-not-set",
            "key": f"secret/{path}",
            "resource": f"secret/{path}",
            "setting": path,
        }
        for path in not_set
    ]


def blocks_for(
    config: dict[str, Any],
    secret_keys: list[str],
    stack: str,
    references: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The plan of one config (keys without the project namespace)."""
    try:
        run = run_program(
            config, secret_keys, preview=True, stack=stack, stack_references=references
        )
    except (pulumi.RunError, SettingsError) as error:
        raise PlanError(f"stack {stack}: {error}") from None
    return describe(run)


def export_ref(ref: str, destination: Path) -> None:
    """The tree of a git ref, without the working copy's local changes."""
    archive = destination / "tree.tar"
    try:
        subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", "-o", str(archive), ref],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as error:
        raise PlanError(f"cannot read git ref {ref!r}: {error.stderr.strip()}") from None
    tree = destination / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    if not (tree / "plan" / "__main__.py").exists():
        raise PlanError(f"git ref {ref!r} predates the offline plan (it has no plan/ package)")


def plan_at_ref(
    ref: str, stack: str, fingerprint_key: str, *, stand_in_missing: bool = False
) -> list[dict[str, Any]]:
    """`plan show --json` of a ref with its own code. Both plans of one diff get the same
    random key for secret env fingerprints (in the environment, not argv), so they can
    be compared with each other and with nothing else."""
    with tempfile.TemporaryDirectory(prefix="openclaw-plan-") as scratch:
        export_ref(ref, Path(scratch))
        result = subprocess.run(
            [sys.executable, "-m", "plan", "show", "--stack", stack, "--json"],
            cwd=Path(scratch) / "tree",
            env={
                **os.environ,
                FINGERPRINT_KEY_ENV: fingerprint_key,
                STAND_IN_MISSING_ENV: "1" if stand_in_missing else "",
            },
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise PlanError(f"planning {ref!r} failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plan", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="print the desired state of a stack")
    show.add_argument("--stack", default="prod")
    show.add_argument("--json", action="store_true", help="machine-readable blocks")
    stand_in_help = (
        "plan a stack that lacks secrets (such as the example stacks) with stand-ins, "
        "each listed as NOT SET; without it a missing secret fails the plan, as in a preview"
    )
    show.add_argument("--stand-in-missing-secrets", action="store_true", help=stand_in_help)
    diff = commands.add_parser("diff", help="compare the plans of two git refs")
    diff.add_argument("base")
    diff.add_argument("head")
    diff.add_argument("--stack", default="prod")
    diff.add_argument(
        "--json", action="store_true", help="machine-readable: the operation per resource"
    )
    diff.add_argument("--stand-in-missing-secrets", action="store_true", help=stand_in_help)
    options = parser.parse_args(argv)
    try:
        return _run(options)
    except PlanError as error:
        print(f"plan: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `plan show | head`: the reader left. Point stdout at /dev/null so the
        # interpreter's final flush cannot fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("plan: output closed before the plan was written (broken pipe)", file=sys.stderr)
        return 1
    except Exception as error:  # never a traceback: a bug is reported in one line too
        if os.environ.get(DEBUG_ENV):
            raise
        print(
            f"plan: unexpected {type(error).__name__}; rerun with {DEBUG_ENV}=1 for a traceback",
            file=sys.stderr,
        )
        return 1


def _run(options: argparse.Namespace) -> int:
    stand_in_missing = bool(
        options.stand_in_missing_secrets or os.environ.get(STAND_IN_MISSING_ENV) == "1"
    )
    if options.command == "show":
        blocks = plan_blocks(options.stack, stand_in_missing=stand_in_missing)
        if options.json:
            print(json.dumps(blocks, indent=1, sort_keys=True))
        else:
            print(render_plan(blocks, options.stack))
    else:
        fingerprint_key = secrets.token_hex(32)
        base = plan_at_ref(
            options.base, options.stack, fingerprint_key, stand_in_missing=stand_in_missing
        )
        head = plan_at_ref(
            options.head, options.stack, fingerprint_key, stand_in_missing=stand_in_missing
        )
        if options.json:
            operations = {
                identity: change.op
                for identity, change in sorted(resource_changes(base, head).items())
            }
            print(json.dumps({"resources": operations}, indent=1))
        else:
            changes = diff_plans(base, head)
            print(render_diff(changes, options.stack, options.base, options.head))
    sys.stdout.flush()  # a closed pipe shows here, inside main's handlers
    return 0


def _close_event_loops() -> None:
    """Close the asyncio loops the mock runtime made: one per worker thread of its RPC
    executor (pulumi.runtime.mocks calls _ensure_event_loop there), never closed by it.
    Left open, each is closed by its finalizer during interpreter shutdown, now and then
    after its self-pipe socket is gone, and Python prints an ignored ValueError with a
    traceback after the plan."""
    for candidate in gc.get_objects():
        if (
            isinstance(candidate, asyncio.AbstractEventLoop)
            and not candidate.is_running()
            and not candidate.is_closed()
        ):
            candidate.close()


if __name__ == "__main__":
    status = main()
    _close_event_loops()
    sys.exit(status)

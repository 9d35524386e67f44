"""Offline plan for reviewers: no cloud credentials, no Pulumi CLI.

    python -m plan show [--stack prod] [--json] [--stand-in-missing-secrets]
    python -m plan diff BASE_REF [HEAD_REF] [--stack prod] [--json]

`show` evaluates the program under Pulumi's mock runtime, in preview mode, with
placeholders for every secret, and prints each resource's desired state. `diff`
runs `show --json` on a clean export of each git ref (each with its own code), or on
the working tree as it is when HEAD_REF is left out, and prints what changes per
tenant, flagging CVM replacements, local-volume data and mass removals.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import json
import os
import re
import secrets
import sys
from typing import Any

import pulumi

from components.config_checks import misplaced_keys, outside_config_message
from components.config_keys import OBJECT_KEYS, PROJECT, SCALAR_KEYS
from components.config_parser import SECRET_KEY_NAMES, parse_settings
from components.settings import (
    ConfigProblem,
    EmptyConfigError,
    RawConfig,
    Settings,
    SettingsError,
    raw_config_text,
)
from components.tenant_removal import OPT_IN_SETTING
from plan import PREFIX, PlanError
from plan.describe import describe, render_plan
from plan.diff import diff_plans, render_diff, resource_changes, tenant_removal_of
from plan.evaluate import REPO_ROOT, run_program
from plan.placeholders import (
    encrypted_leaves,
    file_problems,
    placeholder_mux_stack,
    with_placeholders,
)
from plan.refs import STAND_IN_MISSING_ENV, WORKING_TREE, plan_at_ref
from plan.stack_file import EngineConfig, StackFileError, read_stack_file

# Set to get a traceback for an unexpected error (never for expected ones).
DEBUG_ENV = "PLAN_DEBUG"
DEFAULT_STACK = "prod"
# Pulumi's rule for a stack's own name (alphanumerics, '-', '_', '.'); it names the file.
_STACK_PART = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def stack_file_name(stack: str) -> str:
    """The stack's short name from `prod`, `<project>/prod` or `<org>/<project>/prod` (what
    `pulumi --stack` takes); its stack file is Pulumi.<name>.yaml."""
    parts = stack.split("/")
    if len(parts) > 3 or not all(_STACK_PART.fullmatch(part) for part in parts):
        raise PlanError(
            f"--stack {stack!r} is not a stack name: <stack>, <org>/<stack> or "
            f"<org>/{PROJECT}/<stack>, each part letters, digits, '-', '_' or '.'"
        )
    if len(parts) == 3 and parts[1] != PROJECT:
        raise PlanError(f"--stack {stack!r} names project {parts[1]!r}, not {PROJECT!r}")
    return parts[-1]


def plan_blocks(stack: str, *, stand_in_missing: bool = False) -> list[dict[str, Any]]:
    name = stack_file_name(stack)
    path = REPO_ROOT / f"Pulumi.{name}.yaml"
    if not path.exists():
        raise PlanError(f"no stack file Pulumi.{name}.yaml")
    try:
        read = read_stack_file(path, PROJECT, REPO_ROOT / "Pulumi.yaml")
    except StackFileError as error:
        raise PlanError(str(error)) from None
    for key in read.ignored_top_level:
        known = [key.name for key in SCALAR_KEYS] + list(OBJECT_KEYS)
        print(f"{PREFIX}warning: {outside_config_message(key, PROJECT, known)}", file=sys.stderr)
    if not read.values:
        raise PlanError(f"{path.name}: {EmptyConfigError.MESSAGE}")

    prefix = f"{PROJECT}:"
    values = {k.removeprefix(prefix): v for k, v in read.values.items() if k.startswith(prefix)}
    secret = {k.removeprefix(prefix) for k in read.secret_keys if k.startswith(prefix)}
    offline = with_placeholders(values, secret, stand_in_missing=stand_in_missing)
    settings = _checked_settings(name, read, values, offline.config, offline.secret_keys)
    config = offline.config
    references = (
        {config["muxStack"]: placeholder_mux_stack(config["muxStack"])}
        if config.get("muxStack")
        else None
    )
    blocks = blocks_for(config, offline.secret_keys, name, references)
    return [*not_set_blocks(offline.not_set), *opt_in_blocks(settings), *blocks]


def _checked_settings(
    stack: str,
    read: EngineConfig,
    values: dict[str, Any],
    config: dict[str, Any],
    secret_keys: list[str],
) -> Settings:
    """The program's own settings check, with what only the stack file shows: keys outside
    the namespace, `secure: ''`, plaintext leaves among secrets, and which structure is
    stored encrypted (named by its path, never by the stand-in the plan put there)."""
    known = [key.name for key in SCALAR_KEYS] + list(OBJECT_KEYS)
    found = misplaced_keys(list(read.values), PROJECT, known)
    raw = RawConfig(
        values={key: raw_config_text(value) for key, value in config.items()},
        secret_keys=frozenset(secret_keys),
        misplaced=tuple((key, message) for key, message, refused in found if refused),
        foreign_warnings=tuple(
            f"{key}: {message}" for key, message, refused in found if not refused
        ),
        encrypted_paths=frozenset(encrypted_leaves(values)),
        file_problems=tuple(file_problems(values)),
    )
    try:
        settings = parse_settings(raw)
    except SettingsError as error:
        raise PlanError(f"stack {stack}: {error}{_stand_in_hint(error, read)}") from None
    for warning in settings.warnings:
        print(f"{PREFIX}warning: {warning}", file=sys.stderr)
    return settings


def _stand_in_hint(error: SettingsError, read: EngineConfig) -> str:
    """A stack file without a single secret (such as the examples) is planned with stand-ins."""
    missing = [p for p in error.problems if _is_missing_secret(p)]
    if not missing or read.secret_keys:
        return ""
    return (
        "\n  This stack file holds no secrets at all (like the example stacks): to plan it "
        "anyway, pass --stand-in-missing-secrets, which stands in for each missing secret "
        "and lists it as NOT SET."
    )


def _is_missing_secret(problem: ConfigProblem) -> bool:
    top = re.split(r"[.\[]", problem.key, maxsplit=1)[0]
    return top in SECRET_KEY_NAMES and (
        "is missing" in problem.message
        or "is required" in problem.message
        or "no Redpill API key" in problem.message
    )


def not_set_blocks(not_set: list[str]) -> list[dict[str, Any]]:
    """One block per secret the plan stood in for, so no stand-in passes unnoticed;
    sorted, with their count in the first."""
    names = sorted(not_set)
    return [
        {
            "kind": "secret-not-set",
            "key": f"secret/{path}",
            "resource": f"secret/{path}",
            "setting": path,
            **({"count": len(names)} if index == 0 else {}),
        }
        for index, path in enumerate(names)
    ]


def opt_in_blocks(settings: Settings) -> list[dict[str, Any]]:
    """allowTenantRemoval, when set: `plan diff` reads it to judge a mass removal."""
    if not settings.allow_tenant_removal:
        return []
    return [
        {
            "kind": "setting",
            "key": f"setting/{OPT_IN_SETTING}",
            "resource": f"setting/{OPT_IN_SETTING}",
            "setting": OPT_IN_SETTING,
            "value": list(settings.allow_tenant_removal),
        }
    ]


def blocks_for(
    config: dict[str, Any],
    secret_keys: list[str],
    stack: str,
    references: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The plan of one config (keys without the project namespace)."""
    # Outside an engine, pulumi.log.warn prints "warning: ..." itself; the plan has said
    # each of those already, with its own prefix, so the program's copies are dropped.
    program_stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(program_stderr):
            run = run_program(
                config, secret_keys, preview=True, stack=stack, stack_references=references
            )
    except (pulumi.RunError, SettingsError) as error:
        raise PlanError(f"stack {stack}: {error}") from None
    finally:
        for line in program_stderr.getvalue().splitlines():
            if not line.startswith("warning: "):
                print(line, file=sys.stderr)
    return describe(run)


_DESCRIPTION = (
    "Offline plan for reviewers: the desired state of a stack, or what changes between two "
    "git refs, from the stack file and the program, without cloud credentials or the "
    "Pulumi CLI."
)
_STACK_HELP = (
    f"the stack: <stack>, <org>/<stack> or <org>/{PROJECT}/<stack>; its stack file is "
    "Pulumi.<stack>.yaml (default: %(default)s)"
)
_STAND_IN_HELP = (
    "plan a stack that lacks secrets (such as the example stacks) with stand-ins, "
    "each listed as NOT SET; without it a missing secret fails the plan, as in a preview "
    "(default: off)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m plan", description=_DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser(
        "show",
        help="print the desired state of a stack",
        description="Print the desired state of a stack, one block per resource.",
    )
    show.add_argument("--stack", default=DEFAULT_STACK, help=_STACK_HELP)
    show.add_argument("--json", action="store_true", help="machine-readable blocks (default: text)")
    show.add_argument("--stand-in-missing-secrets", action="store_true", help=_STAND_IN_HELP)
    diff = commands.add_parser(
        "diff",
        help="compare the plans of two git refs, or of a ref and the working tree",
        description="Compare the plan of BASE with that of HEAD, each planned with its own "
        "code; without HEAD, with the working tree as it is (uncommitted edits included). "
        "A stack file present at only one side plans as nothing there.",
    )
    diff.add_argument("base", help="git ref to compare from, e.g. origin/main")
    diff.add_argument(
        "head", nargs="?", default=None, help="git ref to compare to (default: the working tree)"
    )
    diff.add_argument("--stack", default=DEFAULT_STACK, help=_STACK_HELP)
    diff.add_argument(
        "--json",
        action="store_true",
        help="machine-readable: the operation per resource (default: text)",
    )
    diff.add_argument("--stand-in-missing-secrets", action="store_true", help=_STAND_IN_HELP)
    return parser


def configure_process() -> None:
    """What this one-shot process runs with: no cyclic garbage collection. The program
    turns it off while it evaluates (see __main__.py), and the plan built from its run
    would otherwise pay for a rescan of everything the run left, to free little."""
    gc.disable()


def main(argv: list[str] | None = None) -> int:
    configure_process()
    options = build_parser().parse_args(argv)
    try:
        return _run(options)
    except PlanError as error:
        print(f"{PREFIX}{error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `plan show | head`: the reader left. Point stdout at /dev/null so the
        # interpreter's final flush cannot fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"{PREFIX}output closed before the plan was written (broken pipe)", file=sys.stderr)
        return 1
    except Exception as error:  # never a traceback: a bug is reported in one line too
        if os.environ.get(DEBUG_ENV):
            raise
        print(
            f"{PREFIX}unexpected {type(error).__name__}; rerun with {DEBUG_ENV}=1 for a traceback",
            file=sys.stderr,
        )
        return 1


def _run(options: argparse.Namespace) -> int:
    stand_in_missing = bool(
        options.stand_in_missing_secrets or os.environ.get(STAND_IN_MISSING_ENV) == "1"
    )
    stack = stack_file_name(options.stack)
    if options.command == "show":
        blocks = plan_blocks(stack, stand_in_missing=stand_in_missing)
        if options.json:
            print(json.dumps(blocks, indent=1, sort_keys=True))
        else:
            print(render_plan(blocks, stack))
    else:
        fingerprint_key = secrets.token_hex(32)
        plans = [
            plan_at_ref(ref, stack, fingerprint_key, stand_in_missing=stand_in_missing)
            for ref in (options.base, options.head)
        ]
        head_label = options.head if options.head is not None else WORKING_TREE
        for ref, planned in zip((options.base, head_label), plans, strict=True):
            if planned is None:
                print(
                    f"{PREFIX}note: there is no Pulumi.{stack}.yaml at {ref}: it plans as "
                    "no resources",
                    file=sys.stderr,
                )
        if plans[0] is None and plans[1] is None:
            raise PlanError(f"no stack file Pulumi.{stack}.yaml at {options.base} or {head_label}")
        base, head = plans[0] or [], plans[1] or []
        removal = tenant_removal_of(base, head)
        if options.json:
            operations = {
                identity: change.op
                for identity, change in sorted(resource_changes(base, head).items())
            }
            document: dict[str, Any] = {"resources": operations}
            if removal is not None and removal.guarded:
                document["tenantRemoval"] = {
                    "removed": list(removal.removed),
                    "running": len(removal.running),
                    "refusedByPulumiUp": removal.refused,
                }
            print(json.dumps(document, indent=1))
        else:
            changes = diff_plans(base, head)
            print(render_diff(changes, stack, options.base, head_label, removal))
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

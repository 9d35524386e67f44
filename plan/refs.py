"""`plan diff`'s two sides: a git ref's tree, or the working tree, each planned with its
own code by a `plan show --json` run inside it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from plan import PREFIX, PlanError, evaluate
from plan.describe import FINGERPRINT_KEY_ENV


def _git() -> list[str]:
    return ["git", "-C", str(evaluate.REPO_ROOT)]


# The working tree as it is (uncommitted edits included), as `diff` names it.
WORKING_TREE = "the working tree"
# Set by --stand-in-missing-secrets, and read from the environment too, so the `show`
# that `diff` runs at each ref inherits it (an older ref's code ignores it).
STAND_IN_MISSING_ENV = "OPENCLAW_PLAN_STAND_IN_MISSING_SECRETS"


def export_ref(ref: str, destination: Path) -> None:
    """The tree of a git ref, without the working copy's local changes."""
    archive = destination / "tree.tar"
    try:
        subprocess.run(
            [*_git(), "archive", "--format=tar", "-o", str(archive), "--", ref],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as error:
        reason = error.stderr.strip().splitlines()[-1] if error.stderr.strip() else "git failed"
        raise PlanError(f"cannot read git ref {ref!r}: {reason}") from None
    tree = destination / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    if not (tree / "plan" / "__main__.py").exists():
        raise PlanError(f"git ref {ref!r} predates the offline plan (it has no plan/ package)")


def export_working_tree(destination: Path) -> None:
    """The working tree as it is: tracked files with their edits, and new untracked ones."""
    listed = subprocess.run(
        [*_git(), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        raise PlanError("cannot list the working tree's files (is this a git checkout?)")
    tree = destination / "tree"
    for name in listed.stdout.decode("utf-8", "replace").split("\0"):
        source = evaluate.REPO_ROOT / name
        if name and source.is_file() and not source.is_symlink():
            target = tree / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def plan_at_ref(
    ref: str | None, stack: str, fingerprint_key: str, *, stand_in_missing: bool = False
) -> list[dict[str, Any]] | None:
    """`plan show --json` of a ref (None: the working tree) with its own code, or None when
    the stack has no stack file there (added or removed between the refs). Both plans of
    one diff get the same random key for secret env fingerprints (in the environment, not
    argv), so they can be compared with each other and with nothing else."""
    label = WORKING_TREE if ref is None else repr(ref)
    with tempfile.TemporaryDirectory(prefix="openclaw-plan-") as scratch:
        if ref is None:
            export_working_tree(Path(scratch))
        else:
            export_ref(ref, Path(scratch))
        tree = Path(scratch) / "tree"
        if not (tree / f"Pulumi.{stack}.yaml").exists():
            return None
        result = subprocess.run(
            [sys.executable, "-m", "plan", "show", "--stack", stack, "--json"],
            cwd=tree,
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
        # One prefix: the plan at the ref already starts each of its lines with "plan: ".
        reason = "\n".join(line.removeprefix(PREFIX) for line in result.stderr.strip().splitlines())
        raise PlanError(f"planning {label} failed: {reason}")
    return json.loads(result.stdout)

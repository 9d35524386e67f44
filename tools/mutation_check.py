"""A standing mutation check of the security- and data-critical code; not part of CI (slow).

    .venv/bin/python -m tools.mutation_check [--only SUBSTRING] [--jobs N] [--skip-baseline]

Why a list of our own (tools/mutants.py) rather than mutmut or cosmic-ray: those generate
every operator and constant swap in a module (hundreds for driver/phala_cvm.py alone) and
rerun the selected tests for each; the driver's tests start the real `phala` CLI (about a
second of Node start-up per call), so a full run takes hours. mutmut 3 also rewrites each
function into a trampoline that calls back into mutmut (to learn which tests reach it and
to pick the active mutant from an environment variable), while the driver runs as a
subprocess of the system `python3 -I -S`, outside the venv where mutmut lives.
A short list of plausible mistakes, each naming the promise it breaks, keeps the run to
minutes and the survivors meaningful.

The repository (tracked and untracked files, as they are now) is copied to a temporary
directory; node_modules is linked in. Each mutant is applied there, its tests run with
`pytest -x -q`, and the file is restored before the next mutant. A mutant is killed when
its tests fail or time out, and survives when they pass. A baseline run of every selected
test on the unmutated copy comes first: a suite that already fails would kill everything.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tools.mutants import MUTANTS, Mutant

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_TIMEOUT_SECONDS = 900  # a mutant that hangs its tests counts as killed
LINKED = ("node_modules", ".venv")


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    verdict: str  # "killed", "survived", "timeout" (counts as killed) or "no tests"
    detail: str = ""

    @property
    def killed(self) -> bool:
        return self.verdict in ("killed", "timeout")


def occurrences(mutant: Mutant, root: Path = REPO_ROOT) -> int:
    """How often the mutant's snippet occurs in its file (it must be exactly once)."""
    path = root / mutant.path
    return path.read_text(encoding="utf-8").count(mutant.original) if path.exists() else 0


def copy_repository(destination: Path) -> None:
    """The working tree as it is (tracked and untracked, not ignored), heavy dirs linked."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = REPO_ROOT / relative
        if not source.is_file():  # deleted in the working tree
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    for name in LINKED:
        if (REPO_ROOT / name).exists():
            (destination / name).symlink_to(REPO_ROOT / name)


def existing_tests(tests: Iterable[str], root: Path) -> list[str]:
    return [test for test in tests if (root / test.split("::", 1)[0]).exists()]


def run_pytest(root: Path, tests: Sequence[str]) -> tuple[str, str]:
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [str(REPO_ROOT / ".venv" / "bin" / "python"), "-m", "pytest", "-x", "-q"]
    command += ["-p", "no:cacheprovider", *tests]
    try:
        finished = subprocess.run(
            command,
            cwd=root,
            env=environment,
            capture_output=True,
            text=True,
            timeout=TEST_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "timeout", ""
    lines = finished.stdout.strip().splitlines()
    # The first failing test says what caught the mutant; a pass ends with its summary.
    failures = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
    detail = failures[0] if failures else (lines or [""])[-1]
    return ("survived" if finished.returncode == 0 else "killed"), detail


def check_mutant(root: Path, mutant: Mutant) -> Outcome:
    tests = existing_tests(mutant.tests, root)
    if not tests:
        return Outcome(mutant, "no tests")
    path = root / mutant.path
    original_text = path.read_text(encoding="utf-8")
    if original_text.count(mutant.original) != 1:
        raise SystemExit(f"mutant {mutant.name!r}: snippet not found exactly once in {mutant.path}")
    path.write_text(original_text.replace(mutant.original, mutant.replacement), encoding="utf-8")
    try:
        verdict, detail = run_pytest(root, tests)
    finally:
        path.write_text(original_text, encoding="utf-8")
    return Outcome(mutant, verdict, detail)


def group_by_file(mutants: Sequence[Mutant]) -> list[list[Mutant]]:
    """Mutants of one file run one after another; different files may run in parallel."""
    groups: dict[str, list[Mutant]] = {}
    for mutant in mutants:
        groups.setdefault(mutant.path, []).append(mutant)
    return list(groups.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--only", action="append", help="run only mutants whose name contains this (repeatable)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="files mutated in parallel")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or any(o in m.name for o in args.only)]

    with tempfile.TemporaryDirectory(prefix="openclaw-phala-mutants-") as temporary:
        # One copy per parallel job, so that two mutants never share a tree.
        copies = []
        for index in range(max(1, args.jobs)):
            copy = Path(temporary) / f"copy-{index}"
            copy.mkdir()
            copy_repository(copy)
            copies.append(copy)
        if not args.skip_baseline:
            selected = sorted({t for m in mutants for t in existing_tests(m.tests, copies[0])})
            verdict, detail = run_pytest(copies[0], selected)
            if verdict != "survived":
                print(f"baseline: the unmutated tests do not pass ({detail}); no score", flush=True)
                return 2
            print(f"baseline: {detail}", flush=True)

        def run_group(job: tuple[int, list[Mutant]]) -> list[Outcome]:
            index, group = job
            outcomes = []
            for mutant in group:
                outcome = check_mutant(copies[index % len(copies)], mutant)
                print(f"{outcome.verdict:9} {mutant.name}: {outcome.detail}", flush=True)
                outcomes.append(outcome)
            return outcomes

        groups = group_by_file(mutants)
        with ThreadPoolExecutor(max_workers=len(copies)) as pool:
            # Jobs are keyed by copy: group i always runs in copy i % jobs, one at a time.
            per_copy: list[list[tuple[int, list[Mutant]]]] = [[] for _ in copies]
            for index, group in enumerate(groups):
                per_copy[index % len(copies)].append((index, group))
            results = pool.map(lambda jobs: [o for job in jobs for o in run_group(job)], per_copy)
            outcomes = [outcome for batch in results for outcome in batch]

    killed = [o for o in outcomes if o.killed]
    survived = [o for o in outcomes if not o.killed]
    print()
    for outcome in survived:
        print(
            f"SURVIVED: {outcome.mutant.name} ({outcome.mutant.path}): breaks "
            f"'{outcome.mutant.breaks}' [{outcome.verdict}]"
        )
    score = 100.0 * len(killed) / len(outcomes) if outcomes else 0.0
    print(
        f"killed {len(killed)}, survived {len(survived)}, score {score:.1f}% "
        f"({len(killed)}/{len(outcomes)})"
    )
    return 0 if not survived else 1


if __name__ == "__main__":
    sys.exit(main())

"""The mutation check's list keeps applying to the code it mutates (the check itself runs
outside CI: `python -m tools.mutation_check`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tools.mutants import MUTANTS, Mutant
from tools.mutation_check import REPO_ROOT, occurrences


def test_mutant_names_are_unique() -> None:
    names = [mutant.name for mutant in MUTANTS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("mutant", MUTANTS, ids=[mutant.name for mutant in MUTANTS])
def test_each_mutant_applies_once_compiles_and_names_existing_tests(mutant: Mutant) -> None:
    # A snippet that moved or changed would silently stop being mutated.
    assert occurrences(mutant) == 1, f"{mutant.path} no longer holds the snippet once"
    source = (REPO_ROOT / mutant.path).read_text(encoding="utf-8")
    mutated = source.replace(mutant.original, mutant.replacement)
    assert mutated != source
    # A mutant that does not even compile (or parse) would be "killed" without testing
    # anything.
    if mutant.path.endswith((".yml", ".yaml")):
        yaml.safe_load(mutated)
    else:
        compile(mutated, mutant.path, "exec")
    for test in mutant.tests:
        assert (REPO_ROOT / test.split("::", 1)[0]).exists(), test
        if "::" in test:
            function = test.split("::", 1)[1]
            assert f"def {function}(" in Path(REPO_ROOT / test.split("::")[0]).read_text(), test

"""The hostile-config run (tools/hostile_run.py): every case meets its verdict, with no
catch-all, no wrongly accepted config and no refusal that fails to name its key."""

from __future__ import annotations

from collections import Counter

import pytest

from tools.hostile_run import CASES, Case, judge


def test_the_run_covers_every_class_of_issue_24() -> None:
    kinds = Counter(case.kind for case in CASES)
    for kind in (
        "namespace",
        "structure",
        "mux-without-name",
        "weak-value",
        "one-pass",
        "empty",
        "nesting",
        "integer",
        "valid",
        "plan-cli",
        "ops-cli",
    ):
        assert kinds[kind] >= 4, kind
    assert len({(case.kind, case.name) for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.kind}-{case.name}")
def test_each_hostile_case_meets_its_verdict(case: Case) -> None:
    verdict = judge(case)
    assert verdict.passed, f"{verdict.why}: exit {verdict.status}\n{verdict.message[-2000:]}"

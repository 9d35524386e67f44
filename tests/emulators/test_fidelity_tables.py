"""The fidelity tables kept beside each imitation stay true to the tests: every row names
at least one test, and every test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLES = sorted(
    path
    for folder in ("emulators", "standins")
    for path in (REPO_ROOT / folder).rglob("FIDELITY.md")
)
TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")


def table_rows(path: Path) -> list[str]:
    """The data rows of every Markdown table in the file (not headers or rules)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-", " ", ":"}:
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells and cells[0] in ("behaviour", "question"):
            continue  # a header row
        rows.append(line)
    return rows


def test_the_imitations_keep_fidelity_tables() -> None:
    assert REPO_ROOT / "emulators" / "phala" / "FIDELITY.md" in TABLES


@pytest.mark.parametrize("table", TABLES, ids=[str(t.relative_to(REPO_ROOT)) for t in TABLES])
def test_every_row_names_tests_that_exist(table: Path) -> None:
    rows = table_rows(table)
    assert rows, f"{table} has no table rows"
    for row in rows:
        references = TEST_REFERENCE.findall(row)
        assert references, f"a row names no test: {row[:120]}"
        for test_file, test_name in references:
            source = REPO_ROOT / test_file
            assert source.is_file(), f"{test_file} does not exist ({row[:80]})"
            if test_name:
                assert re.search(rf"^def {test_name}\(", source.read_text(), re.MULTILINE), (
                    f"{test_file} has no test {test_name}"
                )

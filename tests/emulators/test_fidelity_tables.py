"""The fidelity tables kept beside each imitation stay true to the tests: in every table
with a test column, each row names at least one test (or says "not pinned" and why), and
every test it names exists (as `tests/<file>.py::test_name`, or a bare `test_name`
defined somewhere under tests/)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLES = sorted(
    path
    for folder in ("emulators", "standins")
    for path in (REPO_ROOT / folder).rglob("FIDELITY.md")
)
TEST_COLUMNS = ("test", "tests", "pinned by")
PATH_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")
BARE_REFERENCE = re.compile(r"`(test_\w+)`")


def cells(line: str) -> list[str]:
    """A table row's cells: a `|` inside backticks or escaped as `\\|` is not a border."""
    found, current, in_code, escaped = [], [], False, False
    for char in line.strip().strip("|"):
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == "`":
            in_code = not in_code
            current.append(char)
        elif char == "|" and not in_code:
            found.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    found.append("".join(current).strip())
    return found


def cells_of_test_column(path: Path) -> list[str]:
    """The test cell of each data row of each table that has a test column."""
    found: list[str] = []
    column: int | None = None
    previous = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            column, previous = None, ""
            continue
        if set(line) <= {"|", "-", " ", ":"}:  # the rule under a header row
            headers = [cell.lower() for cell in cells(previous)]
            column = next((i for i, h in enumerate(headers) if h in TEST_COLUMNS), None)
        elif column is not None:
            row = cells(line)
            found.append(row[column] if column < len(row) else "")
        previous = line
    return found


@cache
def defined_tests() -> frozenset[str]:
    names = set()
    for source in (REPO_ROOT / "tests").rglob("test_*.py"):
        names.update(re.findall(r"^def (test_\w+)\(", source.read_text(), re.MULTILINE))
    return frozenset(names)


def test_each_imitation_keeps_a_fidelity_table() -> None:
    names = {str(path.relative_to(REPO_ROOT)) for path in TABLES}
    assert {"emulators/phala/FIDELITY.md", "emulators/cloudflare/FIDELITY.md"} <= names
    assert "standins/FIDELITY.md" in names


@pytest.mark.parametrize("table", TABLES, ids=[str(t.relative_to(REPO_ROOT)) for t in TABLES])
def test_every_row_names_tests_that_exist(table: Path) -> None:
    rows = cells_of_test_column(table)
    assert rows, f"{table} has no table with a test column"
    for cell in rows:
        if cell.startswith("not pinned"):  # said so, with the reason, in the table itself
            continue
        paths = PATH_REFERENCE.findall(cell)
        bare = [name for name in BARE_REFERENCE.findall(cell) if f"::{name}" not in cell]
        assert paths or bare, f"a row names no test: {cell[:120]!r}"
        for test_file, test_name in paths:
            source = REPO_ROOT / test_file
            assert source.is_file(), f"{test_file} does not exist"
            if test_name:
                assert re.search(rf"^def {test_name}\(", source.read_text(), re.MULTILINE), (
                    f"{test_file} has no test {test_name}"
                )
        for name in bare:
            assert name in defined_tests(), f"no test is named {name}"

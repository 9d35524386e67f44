"""Fixtures for the engine tests: one Phala API emulator and one workspace per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import engine_emulator, opened_workspace


@pytest.fixture
def emulator() -> Iterator[PhalaCloudEmulator]:
    """The service as hostile as reality, fast: updates restart, deletes take a moment."""
    with engine_emulator() as running:
        yield running


@pytest.fixture
def workspace(
    engine_dir: Path, emulator: PhalaCloudEmulator, tmp_path: Path
) -> Iterator[PulumiWorkspace]:
    with opened_workspace(engine_dir, tmp_path / "engine", emulator) as created:
        yield created

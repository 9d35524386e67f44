"""Fixtures for the engine tests: one Phala API emulator and one workspace per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.phala import Behaviour, PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import ENGINE_TIMINGS


@pytest.fixture
def emulator() -> Iterator[PhalaCloudEmulator]:
    """The service as hostile as reality, fast: updates restart, deletes take a moment."""
    with PhalaCloudEmulator(behaviour=Behaviour(timings=ENGINE_TIMINGS)) as running:
        yield running


@pytest.fixture
def workspace(
    engine_dir: Path, emulator: PhalaCloudEmulator, tmp_path: Path
) -> Iterator[PulumiWorkspace]:
    created = PulumiWorkspace(engine_dir, tmp_path / "engine", emulator)
    try:
        yield created
    finally:
        created.close()

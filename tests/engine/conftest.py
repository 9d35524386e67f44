"""Fixtures for the engine tests: one Phala API emulator and one workspace per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace


@pytest.fixture
def emulator() -> Iterator[PhalaCloudEmulator]:
    with PhalaCloudEmulator(provision_seconds=0.2, update_seconds=0.2) as running:
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

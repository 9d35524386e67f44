"""Fixtures for the engine tests: one Phala API emulator and one workspace per test; for
state kept in R2, one moto S3 server per session and a fresh bucket behind an R2 front."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.moto_server import MotoServer, start_moto_server
from tests.support.r2_state import R2StateBucket, r2_state_bucket


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


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = start_moto_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def r2_state(moto_server: MotoServer, tmp_path: Path) -> Iterator[R2StateBucket]:
    with r2_state_bucket(moto_server, tmp_path / "r2-front-tls") as state:
        yield state

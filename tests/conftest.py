"""Suite-wide fixtures: the real Pulumi engine, for every test that asks for it.

A test that uses `engine_dir` carries the `engine` marker. Without the engine such a
test skips, saying how to get it; under CI=true it fails instead, because a CI run that
skipped it would claim what it did not check.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.engine_harness import EngineUnavailableError, locate_engine
from tests.support.moto_server import MotoServer, start_moto_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "engine_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.engine)
        if "oracle_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.oracle)


@pytest.fixture(scope="session")
def engine_dir() -> Path:
    try:
        return locate_engine()
    except EngineUnavailableError as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the engine is missing: {error}", pytrace=False)
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's S3 in a process of its own on 127.0.0.1, for the session; stopped by pid."""
    server = start_moto_server()
    try:
        yield server
    finally:
        server.stop()

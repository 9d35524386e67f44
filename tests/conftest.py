"""Suite-wide fixtures: the real Pulumi engine, for every test that asks for it.

A test that uses `engine_dir` carries the `engine` marker, one that uses `oracle_dir` (the
real OpenClaw) the `oracle` marker. Without the engine or the oracle such a test skips,
saying how to get it; under CI=true it fails instead, because a CI run that skipped it
would claim what it did not check.

`moto_server` is one moto S3 server for the session (the store behind the R2 front of
the state-in-R2 tests), started on first use and stopped at the end by its process id.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.engine_harness import EngineUnavailableError, locate_engine
from tests.support.openclaw_oracle import OracleUnavailableError, locate_oracle

if TYPE_CHECKING:
    from tests.support.moto_server import MotoServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "engine_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.engine)
        if "oracle_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.oracle)
    # The files that run the engine or the gateway take minutes each: handed out first,
    # they do not leave one worker finishing a long file while the other idles. The sort
    # is stable, so each file keeps its own order (its tests may build on each other).
    slow_files = {item.path for item in items if _is_slow(item)}
    items.sort(key=lambda item: item.path not in slow_files)


def _is_slow(item: pytest.Item) -> bool:
    return item.get_closest_marker("engine") is not None or (
        item.get_closest_marker("oracle") is not None
    )


@pytest.fixture(scope="session")
def engine_dir() -> Path:
    try:
        return locate_engine()
    except EngineUnavailableError as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the engine is missing: {error}", pytrace=False)
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def oracle_dir() -> Path:
    """The real OpenClaw installed by scripts/oracle (marker `oracle`)."""
    try:
        return locate_oracle()
    except OracleUnavailableError as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the OpenClaw oracle is missing: {error}", pytrace=False)
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's S3 in a process of its own on 127.0.0.1, for the session; stopped by pid."""
    from tests.support.moto_server import start_moto_server  # boto3 only when asked for

    server = start_moto_server()
    try:
        yield server
    finally:
        server.stop()

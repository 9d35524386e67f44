"""The SDK's debug messages are dropped unless OPENCLAW_SDK_DEBUG_LOGS=1 asks for them
(components/sdk_debug_log.py); the program's own messages are untouched. Under the real
engine: tests/engine/test_first_real_runs.py."""

from __future__ import annotations

import pulumi
import pytest

from components.sdk_debug_log import SDK_DEBUG_LOGS_VAR, quiet_sdk_debug_logs


@pytest.fixture(autouse=True)
def restore_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pulumi.log, "debug", pulumi.log.debug)


class Engine:
    def __init__(self) -> None:
        self.severities: list[int] = []

    def Log(self, request: object) -> None:
        self.severities.append(request.severity)  # type: ignore[attr-defined]


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Engine:
    found = Engine()
    monkeypatch.setattr(pulumi.log, "get_engine", lambda: found)
    return found


def test_by_default_the_sdks_debug_messages_never_reach_the_engine(engine: Engine) -> None:
    assert quiet_sdk_debug_logs({}) is True
    pulumi.log.debug("resource registration successful: ty=x, urn=y")
    pulumi.log.warn("the program's own warning")
    pulumi.log.info("the program's own message")
    severities = pulumi.runtime.proto.engine_pb2
    assert engine.severities == [severities.WARNING, severities.INFO]


@pytest.mark.parametrize("value", ["0", "", "false", "no", "off", "2"])
def test_other_values_drop_them(engine: Engine, value: str) -> None:
    assert quiet_sdk_debug_logs({SDK_DEBUG_LOGS_VAR: value}) is True
    pulumi.log.debug("dropped")
    assert engine.severities == []


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_with_the_variable_set_they_reach_the_engine(engine: Engine, value: str) -> None:
    assert quiet_sdk_debug_logs({SDK_DEBUG_LOGS_VAR: value}) is False
    pulumi.log.debug("kept")
    assert engine.severities == [pulumi.runtime.proto.engine_pb2.DEBUG]


def test_asking_after_a_run_that_dropped_them_brings_them_back(engine: Engine) -> None:
    # One process can run the program twice (the tests, the offline plan).
    assert quiet_sdk_debug_logs({}) is True
    assert quiet_sdk_debug_logs({SDK_DEBUG_LOGS_VAR: "1"}) is False
    pulumi.log.debug("kept")
    assert engine.severities == [pulumi.runtime.proto.engine_pb2.DEBUG]

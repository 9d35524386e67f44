"""Waiting on the API, with a scripted API and a fake clock: which answers end a wait,
which are phases, and how long a wait may last."""

from __future__ import annotations

from typing import Any

import pytest

from driver.errors import DriverError
from driver.waiting import Expected, Gone, Waiter

COMPOSE = "services:\n  openclaw:\n    image: a\n"
EXPECTED = Expected(COMPOSE, ("MASTER_KEY",))


def cvm(status: str, *, in_progress: bool = False, compose: str = COMPOSE, **extra: Any) -> dict:
    document = {"name": "kai-gateway", "status": status, "in_progress": in_progress}
    document["compose_file"] = {"docker_compose_file": compose, "allowed_envs": ["MASTER_KEY"]}
    return {**document, **extra}


class ScriptedApi:
    """Answers each read with the next document (the last one forever)."""

    def __init__(self, *answers: dict | None) -> None:
        self.answers = list(answers)
        self.reads = 0

    def get_cvm(self, cvm_id: str) -> dict | None:
        self.reads += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def waiter(api: ScriptedApi, clock: FakeClock, timeout: int = 600) -> Waiter:
    return Waiter(
        api, "kai-gateway", timeout, 2.0, log=lambda _: None, sleep=clock.sleep, clock=clock
    )


def test_running_while_an_operation_is_in_progress_is_not_done() -> None:
    api = ScriptedApi(
        cvm("running", in_progress=True),
        cvm("stopping", in_progress=True),
        cvm("stopped", in_progress=True),
        cvm("starting", in_progress=True),
        cvm("running"),
    )
    result = waiter(api, FakeClock()).until_settled("id", EXPECTED)
    assert result["status"] == "running" and api.reads == 5


def test_a_settled_cvm_still_serving_the_old_compose_is_waited_on() -> None:
    api = ScriptedApi(cvm("running", compose="old"), cvm("running"))
    waiter(api, FakeClock()).until_settled("id", EXPECTED)
    assert api.reads == 2


def test_a_settled_stop_is_a_failure_but_a_stop_in_progress_is_a_phase() -> None:
    with pytest.raises(DriverError, match="is stopped, not running"):
        waiter(ScriptedApi(cvm("stopped")), FakeClock()).until_settled("id", EXPECTED)
    phase = ScriptedApi(cvm("stopped", in_progress=True), cvm("running"))
    assert waiter(phase, FakeClock()).until_settled("id", EXPECTED)["status"] == "running"


def test_an_error_status_names_the_boot_error() -> None:
    api = ScriptedApi(cvm("error", boot_error="kernel panic"))
    with pytest.raises(DriverError, match="is error, not running: kernel panic"):
        waiter(api, FakeClock()).until_settled("id", EXPECTED)


@pytest.mark.parametrize("answer", [None, cvm("deleting", in_progress=True), cvm("deleted")])
def test_a_cvm_that_goes_away_while_settling_is_reported_gone(answer: dict | None) -> None:
    with pytest.raises(Gone):
        waiter(ScriptedApi(answer), FakeClock()).until_settled("id", EXPECTED)


def test_the_wait_lasts_the_configured_time_well_past_the_clis_300_seconds() -> None:
    clock = FakeClock()
    api = ScriptedApi(cvm("starting", in_progress=True))
    with pytest.raises(DriverError) as raised:
        waiter(api, clock, timeout=900).until_settled("id", EXPECTED)
    assert 900 <= clock.now < 900 + 2.0 + 0.001
    assert "after 900s (phalaWaitTimeoutSeconds)" in str(raised.value)
    assert "starting (an operation in progress)" in str(raised.value)


def test_until_gone_accepts_a_404_or_a_deleted_status() -> None:
    clock = FakeClock()
    for final in (None, cvm("deleted", deleted_at="2026-12-02T00:00:00Z")):
        api = ScriptedApi(cvm("deleting", in_progress=True), final)
        waiter(api, clock).until_gone("id", waiter(api, clock).deadline())
        assert api.reads == 2


def test_until_free_ends_when_no_operation_runs_whatever_the_status() -> None:
    api = ScriptedApi(
        cvm("running", in_progress=True, progress={"target": "running"}), cvm("stopped")
    )
    clock = FakeClock()
    free = waiter(api, clock).until_free("id", waiter(api, clock).deadline())
    assert free is not None and free["status"] == "stopped"

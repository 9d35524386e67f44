"""Drift repair: reading the recorded CVMs and raising the generation of repairable ones."""

from __future__ import annotations

from components.drift import compare
from components.drift_repair import RecordedCvm, next_generations, recorded_cvms

TENANTS = {
    "alice-agent": {"name": "alice-agent", "cvmId": "c-1", "composeHash": "h1"},
    "bob-agent": {
        "name": "bob-agent",
        "cvmId": "c-2",
        "composeHash": "h2",
        "repairGeneration": 2.0,
    },
    "half-agent": {"name": "half-agent", "cvmId": None, "composeHash": "h3"},
}
MUX = {"name": "mux", "cvmId": "c-9", "composeHash": "h9", "repairGeneration": 1}


def test_recorded_cvms_come_from_tenant_and_mux_outputs_with_float_generations() -> None:
    assert recorded_cvms(TENANTS, MUX) == [
        RecordedCvm("tenant", "alice-agent", "c-1", "h1", 0),
        RecordedCvm("tenant", "bob-agent", "c-2", "h2", 2),
        RecordedCvm("mux", "mux", "c-9", "h9", 1),
    ]


def test_a_never_deployed_stack_records_nothing() -> None:
    assert recorded_cvms(None, None) == []
    assert recorded_cvms("[secret]", ["not", "a", "record"]) == []


def test_missing_and_compose_drift_raise_the_generation_other_drift_does_not() -> None:
    recorded = recorded_cvms(TENANTS, MUX)
    verdicts = {
        "alice-agent": compare("tenant", "alice-agent", "c-1", "h1", None),  # missing
        "bob-agent": compare(
            "tenant",
            "bob-agent",
            "c-2",
            "h2",
            {"name": "bob-agent", "status": "stopped", "compose_hash": "h2"},
        ),  # stopped only: reported, not redeployed
        "mux": compare(
            "mux", "mux", "c-9", "h9", {"name": "mux", "status": "running", "compose_hash": "hX"}
        ),
    }
    assert next_generations(recorded, verdicts) == {"alice-agent": 1, "bob-agent": 2, "mux": 2}


def test_without_verdicts_generations_stay_as_recorded() -> None:
    recorded = recorded_cvms(TENANTS, MUX)
    assert next_generations(recorded, {}) == {"alice-agent": 0, "bob-agent": 2, "mux": 1}

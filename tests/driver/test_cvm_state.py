"""Reading a CVM as the API describes it."""

from __future__ import annotations

import json

import pytest

from driver import cvm_state, protocol
from driver.cvm_state import output_record
from driver.errors import DriverError

# --------------------------------------------------------------------------- output_record


def test_output_record_reads_the_current_schema_and_strips_the_app_prefix() -> None:
    cvm = {
        "id": "1001",
        "vm_uuid": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "app_id": "app_" + "ab" * 20,
        "name": "alice-gateway",
        "status": "running",
        "gateway": {"base_domain": "dstack.example", "cname": None},
        "compose_hash": "f" * 64,
        "kms_info": {"encrypted_env_pubkey": "ignored"},
    }

    record = output_record(cvm)

    assert record == {
        "cvmId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "appId": "ab" * 20,
        "name": "alice-gateway",
        "status": "running",
        "gatewayBaseDomain": "dstack.example",
        "composeHash": "f" * 64,
    }
    assert tuple(record) == protocol.OUTPUT_FIELDS


def test_output_record_accepts_the_legacy_gateway_domain() -> None:
    record = output_record(
        {"id": 1001, "app_id": "cd" * 20, "name": "n", "gateway_domain": "legacy.example"}
    )

    assert (record["cvmId"], record["gatewayBaseDomain"]) == ("1001", "legacy.example")
    assert (record["status"], record["composeHash"]) == ("", "")


def test_output_record_refuses_a_cvm_without_ids_or_domain() -> None:
    with pytest.raises(DriverError, match="cvmId, appId, gatewayBaseDomain"):
        output_record({"name": "n", "status": "running"})


def test_an_operation_is_in_progress_by_either_field() -> None:
    assert cvm_state.in_progress({"in_progress": True})
    assert cvm_state.in_progress({"progress": {"target": "running"}})
    assert not cvm_state.in_progress({"in_progress": False, "progress": None})


def test_the_compose_reads_the_same_from_an_object_or_its_json_text() -> None:
    app_compose = {"docker_compose_file": "services:\n  mux-server:\n    image: m\n"}
    as_object = {"compose_file": app_compose}
    as_text = {"compose_file": json.dumps(app_compose)}
    for document in (as_object, as_text):
        assert cvm_state.runs_service(document, "mux-server")
        assert not cvm_state.runs_service(document, "openclaw")
    assert cvm_state.compose_text({"compose_file": "{not json"}) == ""


def test_serves_compares_the_compose_text_and_the_env_names() -> None:
    document = {"compose_file": {"docker_compose_file": "c", "allowed_envs": ["A", "B"]}}
    assert cvm_state.serves(document, "c", ("B", "A"))
    assert cvm_state.serves(document, "c", ("A",))  # names the service adds are not ours
    assert not cvm_state.serves(document, "c", ("A", "C"))
    assert not cvm_state.serves(document, "other", ("A", "B"))
    assert cvm_state.serves({"status": "running"}, "c", ()) is None


def test_dying_and_deleted_cvms_are_told_apart() -> None:
    assert cvm_state.is_dying({"status": "deleting"})
    assert not cvm_state.is_deleted({"status": "deleting"})
    assert cvm_state.is_deleted({"status": "running", "deleted_at": "2026-12-02T00:00:00Z"})

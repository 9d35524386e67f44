"""Reading a CVM as the API describes it."""

from __future__ import annotations

import pytest

from driver import protocol
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

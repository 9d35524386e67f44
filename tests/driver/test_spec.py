"""Reading the driver's inputs from the environment the Command sets."""

from __future__ import annotations

import re

import pytest

from driver import protocol
from driver.errors import DriverError
from driver.spec import (
    HEALTH_URL_OVERRIDE_VAR,
    POLL_SECONDS_VAR,
    HealthCheck,
    previous_record,
    read_spec,
)

# --------------------------------------------------------------------------- read_spec


def full_inputs(**overrides: str) -> dict[str, str]:
    inputs = {
        protocol.ROLE: "openclaw",
        protocol.CVM_NAME: "alice-gateway",
        protocol.EXISTING_CVM_ID: "",
        protocol.INSTANCE_TYPE: "tdx.medium",
        protocol.DISK_SIZE_GB: "80",
        protocol.REGION: "",
        protocol.OS_IMAGE: "",
        protocol.KMS: "phala",
        protocol.DEV_OS: "true",
        protocol.SSH_PUBLIC_KEY: "ssh-ed25519 AAAA op@laptop",
        protocol.WAIT_TIMEOUT_SECONDS: "120",
        protocol.COMPOSE: "services: {}\n",
        protocol.ENV_KEYS: "MASTER_KEY,S3_PREFIX",
        protocol.SECRET_ENV_KEYS: "MASTER_KEY",
        protocol.env_value_var("MASTER_KEY"): "m" * 40,
        protocol.env_value_var("S3_PREFIX"): "",
    }
    inputs.update(overrides)
    return inputs


def test_read_spec_parses_every_input_and_keeps_env_order() -> None:
    spec = read_spec(full_inputs())

    assert spec.role == "openclaw"
    assert spec.name == "alice-gateway"
    assert spec.existing_cvm_id is None  # "" means not configured
    assert (spec.instance_type, spec.disk_size_gb, spec.wait_timeout_seconds) == (
        "tdx.medium",
        80,
        120,
    )
    assert (spec.region, spec.os_image, spec.kms) == (None, None, "phala")
    assert spec.dev_os is True
    assert spec.ssh_public_key == "ssh-ed25519 AAAA op@laptop"
    assert list(spec.env.items()) == [("MASTER_KEY", "m" * 40), ("S3_PREFIX", "")]
    assert spec.secret_values == ["m" * 40]
    assert spec.health is None
    assert "m" * 40 not in repr(spec)  # env is kept out of the dataclass repr


def test_read_spec_health_check_defaults_to_any_http_answer() -> None:
    spec = read_spec(
        full_inputs(**{protocol.HEALTH_URL_TEMPLATE: "https://{app_id}-1.{base_domain}/"})
    )

    assert spec.health == HealthCheck(
        "https://{app_id}-1.{base_domain}/", protocol.HEALTH_EXPECT_HTTP
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({protocol.ROLE: ""}, protocol.ROLE),
        ({protocol.ROLE: "database"}, "must be one of openclaw, mux"),
        ({protocol.CVM_NAME: ""}, protocol.CVM_NAME),
        ({protocol.COMPOSE: ""}, protocol.COMPOSE),
        ({protocol.INSTANCE_TYPE: ""}, protocol.INSTANCE_TYPE),
        ({protocol.ENV_KEYS: "MASTER_KEY,MISSING"}, "missing value for CVM env var MISSING"),
        ({protocol.DISK_SIZE_GB: "forty"}, "must be integers"),
        ({protocol.WAIT_TIMEOUT_SECONDS: "1.5"}, "must be integers"),
    ],
)
def test_read_spec_names_what_is_wrong(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(DriverError, match=re.escape(message)):
        read_spec(full_inputs(**overrides))


# --------------------------------------------------------------------------- previous_record


def test_previous_record_is_the_last_json_line_with_a_cvm_id() -> None:
    stdout = 'noise\n{"cvmId": "old"}\n{"cvmId": "new", "appId": "abc"}\n\n'

    assert previous_record({"PULUMI_COMMAND_STDOUT": stdout}) == {
        "cvmId": "new",
        "appId": "abc",
    }


@pytest.mark.parametrize(
    "stdout",
    ["", "\n\n", "not json", '{"cvmId": ""}', '["cvmId"]', '{"appId": "x"}'],
)
def test_previous_record_is_none_without_a_usable_record(stdout: str) -> None:
    assert previous_record({"PULUMI_COMMAND_STDOUT": stdout}) is None
    assert previous_record({}) is None


def test_operator_knobs_never_share_a_name_with_a_command_input() -> None:
    # The Command's environment is applied over the operator's: a knob named like an
    # input would be silently overwritten by the program's value.
    inputs = {value for name, value in vars(protocol).items() if name.isupper()}
    for knob in (POLL_SECONDS_VAR, HEALTH_URL_OVERRIDE_VAR):
        assert knob not in inputs

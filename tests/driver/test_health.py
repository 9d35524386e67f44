"""The health check after a CVM runs."""

from __future__ import annotations

import pytest

from driver import errors, health, protocol, spec


def test_a_health_template_with_an_unknown_placeholder_is_a_clear_error() -> None:
    inputs = spec.read_spec(
        {
            protocol.ROLE: "mux",
            protocol.CVM_NAME: "openclaw-mux",
            protocol.INSTANCE_TYPE: "tdx.small",
            protocol.COMPOSE: "services: {}",
            protocol.HEALTH_URL_TEMPLATE: "https://{app}/health",
        }
    )
    assert inputs.health is not None
    cvm = {"app_id": "a" * 40, "gateway": {"base_domain": "x.example"}}
    with pytest.raises(errors.DriverError, match="may use only"):
        health.health_url(inputs.health, cvm)


def test_the_health_url_takes_the_bare_app_id_and_either_domain_form() -> None:
    check = spec.HealthCheck("https://{app_id}-18789.{base_domain}/", protocol.HEALTH_EXPECT_HTTP)
    current = {"app_id": "app_" + "b" * 40, "gateway": {"base_domain": "gw.example"}}
    legacy = {"app_id": "b" * 40, "gateway_domain": "gw.example"}
    expected = f"https://{'b' * 40}-18789.gw.example/"
    assert health.health_url(check, current) == expected
    assert health.health_url(check, legacy) == expected

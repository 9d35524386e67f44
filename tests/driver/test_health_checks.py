"""The health check after a CVM runs: what counts as healthy, and the operator's override."""

from __future__ import annotations

from components.phala_cvm import HealthCheck
from driver import protocol
from driver.spec import HEALTH_URL_OVERRIDE_VAR
from tests.driver.driver_sandbox import (
    HealthServer,
    Sandbox,
    closed_port,
    driver_inputs,
    only_cvm,
)


def test_health_json_ok_succeeds_once_health_answers_ok_after_failures(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    replies = [(503, b"{}"), (200, b'{"ok": false}'), (200, b"not json"), (200, b'{"ok":true}')]
    with HealthServer(replies) as server:
        check = HealthCheck(server.template, protocol.HEALTH_EXPECT_JSON_OK)
        result = sandbox.run("create", driver_inputs("zack-gateway", health_check=check))

    assert result.returncode == 0, result.stderr
    cvm = only_cvm(emulator, "zack-gateway")
    assert len(server.paths) == 4
    assert set(server.paths) == {f"/health?app={cvm.app_id}&domain={emulator.gateway_base_domain}"}


def test_the_operator_can_send_health_checks_elsewhere(sandbox: Sandbox) -> None:
    with HealthServer([(200, b'{"ok":true}')]) as server:
        # The program's template is unreachable; the operator's override is used instead.
        unreachable = HealthCheck(
            "https://{app_id}-18789.{base_domain}/", protocol.HEALTH_EXPECT_JSON_OK
        )
        inputs = driver_inputs("omar-gateway", health_check=unreachable)
        result = sandbox.run("create", inputs, overrides={HEALTH_URL_OVERRIDE_VAR: server.template})
    assert result.returncode == 0, result.stderr
    cvm = only_cvm(sandbox.emulator, "omar-gateway")
    assert server.paths == [
        f"/health?app={cvm.app_id}&domain={sandbox.emulator.gateway_base_domain}"
    ]


def test_health_json_ok_that_never_answers_ok_times_out_clearly(sandbox: Sandbox) -> None:
    with HealthServer([(503, b'{"ok": false}')]) as server:
        check = HealthCheck(server.template, protocol.HEALTH_EXPECT_JSON_OK)
        # The same budget first covers the CLI and the boot: enough for a loaded machine.
        inputs = driver_inputs("abby-gateway", health_check=check, wait_timeout_seconds=6)
        result = sandbox.run("create", inputs)

    assert result.returncode == 1, result.stderr
    assert "CVM abby-gateway is running but http://127.0.0.1:" in result.stderr
    assert "did not answer as expected within 6s (last: HTTP 503)" in result.stderr


def test_health_http_expectation_accepts_an_unauthorized_answer(sandbox: Sandbox) -> None:
    with HealthServer([(401, b'{"detail": "login first"}')]) as server:
        check = HealthCheck(server.template, protocol.HEALTH_EXPECT_HTTP)
        result = sandbox.run("create", driver_inputs("beth-gateway", health_check=check))

    assert result.returncode == 0, result.stderr
    assert len(server.paths) == 1


def test_health_http_expectation_rejects_connection_refused(sandbox: Sandbox) -> None:
    template = f"http://127.0.0.1:{closed_port()}/health"
    check = HealthCheck(template, protocol.HEALTH_EXPECT_HTTP)

    result = sandbox.run(
        "create", driver_inputs("cora-gateway", health_check=check, wait_timeout_seconds=6)
    )

    assert result.returncode == 1, result.stderr
    assert f"{template} did not answer as expected within 6s" in result.stderr
    assert "Connection refused" in result.stderr

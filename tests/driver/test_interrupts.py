"""SIGINT and SIGTERM stop the driver promptly, stop its CLI, and leave nothing behind."""

from __future__ import annotations

import os
import signal

import pytest

from components.compose import openclaw_compose
from tests.driver.driver_sandbox import (
    OPENCLAW_IMAGE,
    OPENCLAW_IMAGE_V2,
    DriverRun,
    Sandbox,
    driver_inputs,
    recorded_stdout,
    wait_until,
)
from tests.support.emulator_seed import seed_cvm


def test_sigterm_while_waiting_on_a_stuck_cvm_exits_promptly_and_cleans_up(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    emulator.make_stuck("mia-gateway")
    process = sandbox.start("create", driver_inputs("mia-gateway", wait_timeout_seconds=600))
    try:
        # Past the CLI: the driver is polling a CVM that will never be running.
        wait_until(lambda: emulator.count("GET", r"^/cvms/[0-9a-f]{32}$") >= 2, "status polls")
        assert list(sandbox.tmpdir.iterdir()) != []  # there is something to clean up
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 130
    assert stdout == ""
    assert "interrupted by SIGTERM" in stderr
    sandbox.assert_clean_after(DriverRun(process.returncode, stdout, stderr))


def test_sigint_while_the_cli_sends_an_update_stops_the_cli_and_cleans_up(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    cvm = seed_cvm(emulator, "noah-gateway", openclaw_compose(OPENCLAW_IMAGE))
    # The PATCH hangs on the server, so the CLI is still running when the signal comes.
    emulator.inject_delay("PATCH", r"^/cvms/", 25)
    cli_log = sandbox.logging_cli()
    inputs = driver_inputs("noah-gateway", compose=openclaw_compose(OPENCLAW_IMAGE_V2))
    process = sandbox.start("update", inputs, recorded_stdout(cvm), overrides=cli_log.overrides)
    try:
        # The CLI has read the CVM (its last call before the PATCH) and is still running.
        wait_until(
            lambda: any(r.api_version == "2025-10-28" for r in emulator.requests("GET")),
            "the CLI's read before its PATCH",
        )
        assert len(cli_log.pids()) == 1
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 130
    assert "interrupted by SIGINT" in stderr
    sandbox.assert_clean_after(DriverRun(process.returncode, stdout, stderr))
    [cli_pid] = cli_log.pids()
    with pytest.raises(ProcessLookupError):
        os.kill(cli_pid, 0)

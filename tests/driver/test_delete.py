"""Deleting the recorded CVM, once, and only that one."""

from __future__ import annotations

from components.compose import openclaw_compose
from tests.driver.driver_sandbox import (
    OPENCLAW_IMAGE,
    UNDELIVERABLE_SECRETS,
    Sandbox,
    driver_inputs,
    recorded_stdout,
    secret_env,
)
from tests.support.emulator_seed import seed_cvm


def test_delete_removes_the_recorded_cvm(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    cvm = seed_cvm(emulator, "gina-gateway", openclaw_compose(OPENCLAW_IMAGE))

    result = sandbox.run("delete", driver_inputs("gina-gateway"), recorded_stdout(cvm))

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert emulator.cvms() == []
    assert emulator.count("DELETE", r"^/cvms/") == 1


def test_delete_works_with_a_multiline_env_value_an_older_program_deployed(
    sandbox: Sandbox,
) -> None:
    # Earlier versions sent MUX_JWT_PRIVATE_KEY; the engine deletes with the old inputs.
    emulator = sandbox.emulator
    cvm = seed_cvm(emulator, "old-mux-gateway", openclaw_compose(OPENCLAW_IMAGE))
    env = secret_env({"MUX_JWT_PRIVATE_KEY": UNDELIVERABLE_SECRETS["REAL_NEWLINES"]})

    result = sandbox.run("delete", driver_inputs("old-mux-gateway", env=env), recorded_stdout(cvm))

    assert result.returncode == 0, result.stderr
    assert emulator.cvms() == []


def test_deleting_twice_succeeds_the_second_time_as_already_gone(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    cvm = seed_cvm(emulator, "hank-gateway", openclaw_compose(OPENCLAW_IMAGE))
    inputs = driver_inputs("hank-gateway")

    first = sandbox.run("delete", inputs, recorded_stdout(cvm))
    second = sandbox.run("delete", inputs, recorded_stdout(cvm))

    assert (first.returncode, second.returncode) == (0, 0), second.stderr
    assert "is already gone" in second.stderr
    assert emulator.count("DELETE") == 1


def test_delete_without_previous_stdout_does_nothing(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    bystander = seed_cvm(emulator, "ivy-gateway", openclaw_compose(OPENCLAW_IMAGE))

    result = sandbox.run("delete", driver_inputs("ivy-gateway"))

    assert result.returncode == 0, result.stderr
    assert "nothing to delete" in result.stderr
    assert emulator.count() == 0
    assert [cvm.vm_uuid for cvm in emulator.cvms()] == [bystander.vm_uuid]

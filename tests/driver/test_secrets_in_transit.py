"""Secret values reach the CVM byte-exact, and nowhere else: not argv, not output."""

from __future__ import annotations

import re

import pytest

from components import mux_jwt_key
from driver import protocol
from driver.scrub import REDACTED
from tests.driver.driver_sandbox import (
    HOSTILE_SECRETS,
    UNDELIVERABLE_SECRETS,
    Sandbox,
    default_env,
    driver_inputs,
    only_cvm,
    provisions,
    secret_env,
)


def test_hostile_secret_values_arrive_byte_exact(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator

    result = sandbox.run("create", driver_inputs("jack-gateway", env=secret_env(HOSTILE_SECRETS)))

    assert result.returncode == 0, result.stderr
    decrypted = emulator.decrypted_env(only_cvm(emulator, "jack-gateway"))
    assert decrypted == HOSTILE_SECRETS
    assert list(decrypted) == list(HOSTILE_SECRETS)


def test_the_mux_jwt_key_reaches_the_cvm_on_one_line_byte_exact(sandbox: Sandbox) -> None:
    env = default_env("mux")

    result = sandbox.run("create", driver_inputs("kim-mux", role="mux", env=env))

    assert result.returncode == 0, result.stderr
    decrypted = sandbox.emulator.decrypted_env(only_cvm(sandbox.emulator, "kim-mux"))
    assert decrypted[mux_jwt_key.ENV_NAME] == env.values[mux_jwt_key.ENV_NAME]
    assert decrypted[mux_jwt_key.ENV_NAME] not in result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(UNDELIVERABLE_SECRETS))
def test_a_value_dstack_would_alter_is_refused_before_any_request_naming_only_the_key(
    sandbox: Sandbox, name: str
) -> None:
    emulator = sandbox.emulator
    value = UNDELIVERABLE_SECRETS[name]
    env = secret_env({"FINE": "ok-value", name: value})

    result = sandbox.run("create", driver_inputs("mia-gateway", env=env))

    assert result.returncode == 1
    assert f"CVM env var {name} would not reach the container intact" in result.stderr
    # Nothing of the value (short fragments aside, which ordinary words contain).
    for fragment in value.splitlines():
        if len(fragment) > 5:
            assert fragment not in result.stderr
    assert provisions(emulator) == 0
    assert emulator.cvms() == []


def test_a_value_with_all_three_quote_kinds_fails_naming_the_key_not_the_value(
    sandbox: Sandbox,
) -> None:
    emulator = sandbox.emulator
    unquotable = 'it\'s `really` "unquotable"'
    env = secret_env({"FINE": "ok-value", "UNQUOTABLE_SECRET": unquotable})

    result = sandbox.run("create", driver_inputs("kate-gateway", env=env))

    assert result.returncode == 1
    assert "UNQUOTABLE_SECRET" in result.stderr
    assert "phala CLI's env file" in result.stderr
    assert unquotable not in result.stderr
    assert "unquotable" not in result.stderr  # not even a fragment of it
    assert provisions(emulator) == 0
    assert emulator.cvms() == []


def test_no_secret_reaches_output_error_messages_or_cli_argv(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    cli_log = sandbox.logging_cli()
    secrets = {
        "MASTER_KEY": "mk-distinctive-secret-7f3a9c1e5b",
        "REDPILL_API_KEY": "rp-distinctive-secret-2d8e4f6a0c",
        "SPACED_KEY": "first-part-of-the-key second-part-of-the-key",
    }
    inputs = driver_inputs("liam-gateway", env=secret_env(secrets))
    created = sandbox.run("create", inputs, overrides=cli_log.overrides)
    # A server that echoes what it got in its error: the driver must scrub the echo.
    echoed = f"rejected {secrets['MASTER_KEY']} for key {emulator.api_key}"
    emulator.inject_error("PATCH", r"^/cvms/", status=500, detail=echoed)

    failed = sandbox.run(
        "update", inputs, previous_stdout=created.stdout, overrides=cli_log.overrides
    )

    assert created.returncode == 0, created.stderr
    assert failed.returncode == 1
    assert f"rejected {REDACTED} for key {REDACTED}" in failed.stderr
    argv = cli_log.argv_text()
    assert [line.split(" ")[0] for line in argv.splitlines()] == ["deploy", "deploy"]
    everything = created.stdout + created.stderr + failed.stdout + failed.stderr + argv
    for secret in [*secrets.values(), *secrets["SPACED_KEY"].split()]:
        assert secret not in everything
    assert emulator.api_key not in everything
    # The CLI read the env from a pipe it inherited, never from a file.
    env_paths = [line.split(" --env=")[1].split(" ")[0] for line in argv.splitlines()]
    assert len(env_paths) == 2
    assert all(re.fullmatch(r"/dev/fd/\d+", path) for path in env_paths), env_paths


def test_missing_api_key_says_how_to_set_it(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "create", driver_inputs("olga-gateway"), overrides={"PHALA_CLOUD_API_KEY": None}
    )

    assert result.returncode == 1
    assert "no Phala Cloud API key" in result.stderr
    assert "export PHALA_CLOUD_API_KEY=" in result.stderr
    assert "phala login" in result.stderr
    assert sandbox.emulator.count() == 0


def test_wrong_api_key_is_a_clear_error(sandbox: Sandbox) -> None:
    wrong_key = "phak_wrong_key_do_not_print_7788"

    result = sandbox.run(
        "create", driver_inputs("paul-gateway"), overrides={"PHALA_CLOUD_API_KEY": wrong_key}
    )

    assert result.returncode == 1
    assert "HTTP 401" in result.stderr
    assert "Invalid API key" in result.stderr
    assert wrong_key not in result.stdout + result.stderr
    assert sandbox.emulator.cvms() == []


def test_missing_cli_names_the_path_and_npm_ci(sandbox: Sandbox) -> None:
    absent = sandbox.scratch / "node_modules" / ".bin" / "phala"

    result = sandbox.run(
        "create", driver_inputs("quinn-gateway"), overrides={protocol.CLI_OVERRIDE: str(absent)}
    )

    assert result.returncode == 1
    assert f"phala CLI not found at {absent}" in result.stderr
    assert "npm ci" in result.stderr
    assert sandbox.emulator.count() == 0

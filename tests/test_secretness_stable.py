"""No config form an operator uses flips a value between plain and secret (mock runtime).

The command provider compares old and new inputs as property values, so a value that is
plain in one run and secret in the next is a change: the deploy driver runs again and the
CVM restarts (standins/FIDELITY.md). Each pair below is two ways of writing the same
intent; every resource's inputs, secret markers included, must be identical. The same
forms run through the real engine in tests/engine/test_no_restart_from_secretness.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.errors import RunError

from components.derivation import derive_mux_keys
from driver import protocol
from plan.describe import env_entries
from plan.diff import env_changes
from plan.evaluate import ProgramRun, is_secret, run_program
from standins.plugin_rpc import SECRET_SIGNATURE, SIGNATURE_KEY
from tests.support.stack_configs import MUX_MASTER_KEY, prod_config

# Plain keys an operator might set with `--secret` (e.g. after pasting a value that
# looked sensitive): refused, naming each, so no run ever deploys them as secrets.
PLAIN_KEYS_MADE_SECRET = ("openclawImage", "phalaSshPublicKey", "muxTelegramBotUsername", "tenants")


def inputs_by_resource(run: ProgramRun) -> dict[str, dict[str, Any]]:
    """Resource name -> its inputs as the engine receives them, secrets still wrapped."""
    return {r.name: r.inputs for r in run.registrations}


def test_plain_keys_set_with_secret_are_refused_so_none_ever_flips_to_secret() -> None:
    config, secret_keys = prod_config()
    with pytest.raises(RunError) as refused:
        run_program(config, [*secret_keys, *PLAIN_KEYS_MADE_SECRET])
    for key in PLAIN_KEYS_MADE_SECRET:
        assert f"openclaw-phala:{key}: must be plain, not a secret" in str(refused.value)


@pytest.mark.parametrize(
    "explicit", [("muxRegisterKey",), ("muxAdminToken",), ("muxRegisterKey", "muxAdminToken")]
)
def test_an_explicit_mux_key_equal_to_the_derived_one_registers_the_same_inputs(
    explicit: tuple[str, ...],
) -> None:
    config, secret_keys = prod_config()
    derived = run_program(config, secret_keys)
    keys = derive_mux_keys(MUX_MASTER_KEY)
    values = {"muxRegisterKey": keys.register_key, "muxAdminToken": keys.admin_token}
    with_explicit = run_program(
        {**config, **{key: values[key] for key in explicit}}, [*secret_keys, *explicit]
    )
    assert inputs_by_resource(with_explicit) == inputs_by_resource(derived)


def test_a_per_tenant_redpill_key_equal_to_the_shared_one_registers_the_same_inputs() -> None:
    config, secret_keys = prod_config()
    shared = run_program(config, secret_keys)
    overridden = dict(config)
    overridden["tenantSecrets"] = {
        name: {**entry, "redpillApiKey": config["redpillApiKey"]}
        for name, entry in config["tenantSecrets"].items()
    }
    assert inputs_by_resource(run_program(overridden, secret_keys)) == inputs_by_resource(shared)


def test_every_cvm_env_value_is_secret_exactly_when_its_name_is_listed_secret() -> None:
    config, secret_keys = prod_config()
    run = run_program(config, secret_keys)
    for command in run.deploy_commands:
        plain = command.plain_inputs["environment"]
        listed = set(plain[protocol.SECRET_ENV_KEYS].split(","))
        for name in plain[protocol.ENV_KEYS].split(","):
            marked = is_secret(command.inputs["environment"][protocol.env_value_var(name)])
            assert marked is (name in listed), (command.name, name)


def test_the_plan_shows_a_value_that_only_became_secret_as_a_change() -> None:
    var = protocol.env_value_var("S3_BUCKET")
    environment = {protocol.ENV_KEYS: "S3_BUCKET", protocol.SECRET_ENV_KEYS: "", var: "openclaw-a"}
    plain_marks = {var: "openclaw-a"}
    secret_marks = {var: {SIGNATURE_KEY: SECRET_SIGNATURE, "value": "openclaw-a"}}
    before = env_entries(environment, plain_marks)
    after = env_entries(environment, secret_marks)
    assert env_changes(before, after) == {"S3_BUCKET": "changed"}
    assert env_changes(before, env_entries(environment, plain_marks)) == {}

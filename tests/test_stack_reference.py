"""A tenants-only stack that takes its mux from another stack's outputs."""

from __future__ import annotations

import base64
import json
from typing import Any

import pulumi
import pytest

from driver import protocol
from plan.evaluate import STACK_REFERENCE_TYPE, is_secret, run_program, stack_file_config, unwrap
from tests.support.stack_configs import with_secrets

MUX_STACK = "organization/openclaw-phala/mux"
MUX_BASE_URL = "https://" + "e" * 40 + "-18891.dstack-pha-prod9.phala.network"
REGISTER_KEY = "register-key-from-the-mux-stack-0123456789"


def mux_stack_outputs(**changes: Any) -> dict[str, Any]:
    outputs: dict[str, Any] = {
        "contractVersion": 1,
        "mux": {"name": "openclaw-mux", "baseUrl": MUX_BASE_URL},
        "muxSecrets": {"registerKey": REGISTER_KEY, "adminToken": "admin-token-value-0123456789"},
        "tenants": {},
        "tenantSecrets": {},
    }
    outputs.update(changes)
    return {key: value for key, value in outputs.items() if value is not None}


def run_tenants_stack(outputs: dict[str, Any], secret: tuple[str, ...] = ("muxSecrets",)) -> Any:
    config, secret_keys = with_secrets(stack_file_config("tenants"))
    references = {MUX_STACK: {"outputs": outputs, "secret": secret}}
    return run_program(config, secret_keys, stack="tenants", stack_references=references)


def _bootstrap(run: Any, tenant: str) -> tuple[Any, dict[str, Any]]:
    env = run.named(f"{tenant}-deploy").inputs["environment"]
    wrapped = env[protocol.env_value_var("OPENCLAW_CONFIG_B64")]
    return wrapped, json.loads(base64.b64decode(unwrap(wrapped)))


def test_tenants_join_the_mux_of_the_referenced_stack() -> None:
    run = run_tenants_stack(mux_stack_outputs())
    reference = run.named("mux-stack")
    assert reference.type == STACK_REFERENCE_TYPE
    assert reference.plain_inputs["name"] == MUX_STACK
    for tenant in ("carol-agent", "dave-agent"):
        wrapped, config = _bootstrap(run, tenant)
        assert is_secret(wrapped)
        mux = config["gateway"]["http"]["endpoints"]["mux"]
        assert mux["baseUrl"] == MUX_BASE_URL
        assert mux["registerKey"] == REGISTER_KEY
    assert "mux" not in run.exports  # this stack deploys no mux of its own


# That the register key stays secret when the source stack forgot to mark it is pinned
# where the re-wrap happens (tests/components/test_mux_reference.py): here the tenant's
# bootstrap config is secret through its own wrap whatever the reference returns.


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (mux_stack_outputs(mux=None), "has no 'mux' output"),
        (mux_stack_outputs(muxSecrets=None), "has no 'muxSecrets' output"),
        (
            mux_stack_outputs(muxSecrets={"registerkey": REGISTER_KEY}),
            "output 'muxSecrets' has no 'registerKey' string",
        ),
        (mux_stack_outputs(mux={"baseURL": MUX_BASE_URL}), "output 'mux' has no 'baseUrl'"),
        (mux_stack_outputs(contractVersion=2), "contractVersion 2"),
        (mux_stack_outputs(contractVersion=None), "no contractVersion output"),
    ],
    ids=[
        "missing mux output",
        "missing secrets output",
        "misnamed register key",
        "misnamed base url",
        "newer contract",
        "not an openclaw-phala stack",
    ],
)
def test_missing_or_misnamed_source_output_fails_clearly(
    outputs: dict[str, Any], message: str
) -> None:
    with pytest.raises(pulumi.RunError) as info:
        run_tenants_stack(outputs)
    assert f"muxStack {MUX_STACK}: " in str(info.value)
    assert message in str(info.value)
    assert REGISTER_KEY not in str(info.value)


def test_mux_stack_exports_what_tenant_stacks_read() -> None:
    config, secret_keys = with_secrets(stack_file_config("mux"))
    run = run_program(config, secret_keys, stack="mux")
    assert is_secret(run.exports["muxSecrets"])
    assert set(unwrap(run.exports["muxSecrets"])) == {"registerKey", "adminToken"}
    assert run.plain_exports["mux"]["baseUrl"].endswith(".dstack-pha-test.phala.network")
    assert run.plain_exports["contractVersion"] == 1
    assert run.plain_exports["tenants"] == {}

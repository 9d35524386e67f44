"""Refusals of data-losing changes, judged against what a deployment really exported:
each case deploys one config under the mock runtime, takes its stack outputs, and
checks the next config against them (components/data_guards.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pulumi
import pytest

from components.config_parser import parse_settings
from components.data_guards import deployment_refusals
from components.settings import RawConfig, Settings
from plan.evaluate import run_program
from tests.support.stack_configs import prod_config

SECRET_KEYS = frozenset(prod_config()[1])


def settings_of(config: dict[str, Any]) -> Settings:
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    return parse_settings(RawConfig(values=values, secret_keys=SECRET_KEYS & set(values)))


@pytest.fixture(scope="module")
def deployed() -> tuple[dict[str, Any], dict[str, Any]]:
    """The prod example (a mux, s3 tenants in default and eu, a local tenant) deployed."""
    config, secret_keys = prod_config()
    return config, run_program(config, secret_keys).plain_exports


def with_tenant(config: dict[str, Any], name: str, **fields: Any) -> dict[str, Any]:
    changed = copy.deepcopy(config)
    next(t for t in changed["tenants"] if t["name"] == name).update(fields)
    return changed


def without_tenant(config: dict[str, Any], name: str) -> dict[str, Any]:
    changed = copy.deepcopy(config)
    changed["tenants"] = [t for t in changed["tenants"] if t["name"] != name]
    del changed["tenantSecrets"][name]
    return changed


def index_of(config: dict[str, Any], name: str) -> int:
    return next(i for i, t in enumerate(config["tenants"]) if t["name"] == name)


def test_outputs_carry_what_the_next_run_compares(deployed: Any) -> None:
    _, outputs = deployed
    staging = outputs["tenants"]["staging-agent"]
    assert staging["replacementSettings"]["instanceType"] == "tdx.small"
    assert staging["dataLossAllowed"] is False
    assert outputs["tenants"]["bob-agent"]["jurisdiction"] == "eu"
    assert outputs["tenants"]["bob-agent"]["dataLossAllowed"] is None
    assert outputs["mux"]["dataLossAllowed"] is False


def test_an_unchanged_config_and_a_first_deployment_are_never_refused(deployed: Any) -> None:
    config, outputs = deployed
    assert deployment_refusals(settings_of(config), outputs) == []
    assert deployment_refusals(settings_of(config), {}) == []


def test_a_local_tenants_replacement_is_refused_naming_its_allow_data_loss(deployed: Any) -> None:
    config, outputs = deployed
    at = index_of(config, "staging-agent")
    (refusal,) = deployment_refusals(
        settings_of(with_tenant(config, "staging-agent", instanceType="tdx.medium")), outputs
    )
    assert refusal.startswith(f"openclaw-phala:tenants[{at}].instanceType (tenant staging-agent): ")
    assert "instanceType 'tdx.small' -> 'tdx.medium' replaces its CVM" in refusal
    assert f"set tenants[{at}].allowDataLoss: true for this `pulumi up`, then remove it" in refusal
    allowed = with_tenant(config, "staging-agent", instanceType="tdx.medium", allowDataLoss=True)
    assert deployment_refusals(settings_of(allowed), outputs) == []


def test_a_stack_wide_setting_names_itself_for_every_cvm_with_local_state(deployed: Any) -> None:
    config, outputs = deployed
    refusals = deployment_refusals(settings_of({**config, "phalaDiskSizeGb": "80"}), outputs)
    assert [r.split(" (", 1)[0] for r in refusals] == ["openclaw-phala:phalaDiskSizeGb"] * 2
    assert "(tenant staging-agent)" in refusals[0] and "(mux openclaw-mux)" in refusals[1]
    assert "set muxAllowDataLoss: true for this `pulumi up`" in refusals[1]


def test_a_removed_local_tenant_is_refused_until_its_opt_in_was_deployed(deployed: Any) -> None:
    config, outputs = deployed
    (refusal,) = deployment_refusals(settings_of(without_tenant(config, "staging-agent")), outputs)
    assert refusal.startswith("openclaw-phala:tenants (tenant staging-agent): it is no longer")
    assert (
        "keep it in tenants with allowDataLoss: true for one `pulumi up`, then remove it" in refusal
    )
    released = with_tenant(config, "staging-agent", allowDataLoss=True)
    released_outputs = run_program(released, prod_config()[1]).plain_exports
    assert (
        deployment_refusals(settings_of(without_tenant(config, "staging-agent")), released_outputs)
        == []
    )


def test_a_removed_s3_tenant_is_not_refused(deployed: Any) -> None:
    config, outputs = deployed
    assert deployment_refusals(settings_of(without_tenant(config, "alice-agent")), outputs) == []


@pytest.mark.parametrize("change", ["removed", "renamed"])
def test_the_mux_removed_or_renamed_is_refused_naming_mux_allow_data_loss(
    deployed: Any, change: str
) -> None:
    config, outputs = deployed
    changed = copy.deepcopy(config)
    if change == "removed":
        for key in [key for key in changed if key.startswith("mux")]:
            del changed[key]
    else:
        changed["muxName"] = "openclaw-mux-2"
    (refusal,) = deployment_refusals(settings_of(changed), outputs)
    assert refusal.startswith("openclaw-phala:muxName (mux openclaw-mux): the mux ")
    assert "set muxAllowDataLoss: true for one `pulumi up` with the mux still configured" in refusal


@pytest.mark.parametrize(
    ("fields", "keys"),
    [
        ({"jurisdiction": "default"}, "tenants[{at}].jurisdiction"),
        ({"bucket": "openclaw-bob-agent-moved"}, "tenants[{at}].bucket"),
        (
            {"bucket": "openclaw-bob-agent-fed", "jurisdiction": "fedramp"},
            "tenants[{at}].bucket, tenants[{at}].jurisdiction",
        ),
    ],
)
def test_a_running_s3_tenant_moved_to_a_new_bucket_is_refused_naming_allow_new_bucket(
    deployed: Any, fields: dict[str, str], keys: str
) -> None:
    config, outputs = deployed
    at = index_of(config, "bob-agent")
    (refusal,) = deployment_refusals(
        settings_of(with_tenant(config, "bob-agent", **fields)), outputs
    )
    assert refusal.startswith(f"openclaw-phala:{keys.format(at=at)} (tenant bob-agent): ")
    assert "its state is in R2 bucket openclaw-bob-agent-eu (jurisdiction eu)" in refusal
    assert "stays behind in openclaw-bob-agent-eu (kept, not deleted)" in refusal
    assert "pull a copy with .venv/bin/python -m ops backup pull bob-agent <dir>" in refusal
    assert "restore the copy with .venv/bin/python -m ops backup restore bob-agent <dir>" in refusal
    assert f"set tenants[{at}].allowNewBucket: true for this `pulumi up`" in refusal
    allowed = with_tenant(config, "bob-agent", allowNewBucket=True, **fields)
    assert deployment_refusals(settings_of(allowed), outputs) == []


def test_a_new_cloudflare_account_moves_every_s3_tenant(deployed: Any) -> None:
    config, outputs = deployed
    refusals = deployment_refusals(
        settings_of({**config, "cloudflareAccountId": "f" * 32}), outputs
    )
    assert [r.split(" (tenant")[0] for r in refusals] == ["openclaw-phala:cloudflareAccountId"] * 2


def test_every_refusal_is_reported_in_one_pass_and_none_advises_unprotect(deployed: Any) -> None:
    config, outputs = deployed
    changed = with_tenant(config, "bob-agent", jurisdiction="default")
    changed = without_tenant(changed, "staging-agent")
    changed["muxName"] = "openclaw-mux-2"
    refusals = deployment_refusals(settings_of(changed), outputs)
    assert len(refusals) == 3
    assert not any("unprotect" in refusal for refusal in refusals)


def test_the_program_fails_its_preview_with_the_refusals(deployed: Any) -> None:
    config, outputs = deployed
    changed = with_tenant(config, "bob-agent", jurisdiction="default")
    with pytest.raises(pulumi.RunError, match=r"tenants\[\d\]\.jurisdiction \(tenant bob-agent\)"):
        run_program(changed, prod_config()[1], deployed_outputs=outputs)


def test_outputs_from_before_these_fields_are_compared_where_they_can_be(deployed: Any) -> None:
    config, outputs = deployed
    old = copy.deepcopy(outputs)
    for record in [*old["tenants"].values(), old["mux"]]:
        record.pop("replacementSettings")
        record.pop("dataLossAllowed")
        record.pop("jurisdiction", None)
    # No recorded settings: a replacement cannot be told; a removal or a move still can.
    assert (
        deployment_refusals(
            settings_of(with_tenant(config, "staging-agent", instanceType="tdx.medium")), old
        )
        == []
    )
    assert len(deployment_refusals(settings_of(without_tenant(config, "staging-agent")), old)) == 1
    assert (
        len(
            deployment_refusals(
                settings_of(with_tenant(config, "bob-agent", jurisdiction="default")), old
            )
        )
        == 1
    )


def test_a_local_tenant_moved_to_s3_is_refused_until_its_opt_in_was_deployed(deployed: Any) -> None:
    config, outputs = deployed
    at = index_of(config, "staging-agent")
    moved = with_tenant(config, "staging-agent", storage="s3")
    (refusal,) = deployment_refusals(settings_of(moved), outputs)
    assert refusal.startswith(f"openclaw-phala:tenants[{at}].storage (tenant staging-agent): ")
    assert "local -> s3 restarts its CVM on a new, empty bucket" in refusal
    assert f"set tenants[{at}].allowDataLoss: true with storage local for one" in refusal
    released = run_program(
        with_tenant(config, "staging-agent", allowDataLoss=True), prod_config()[1]
    ).plain_exports
    assert deployment_refusals(settings_of(moved), released) == []


def test_an_s3_tenant_moved_to_local_storage_is_refused_unless_allow_data_loss(
    deployed: Any,
) -> None:
    config, outputs = deployed
    at = index_of(config, "alice-agent")
    moved = with_tenant(config, "alice-agent", storage="local")
    (refusal,) = deployment_refusals(settings_of(moved), outputs)
    assert refusal.startswith(f"openclaw-phala:tenants[{at}].storage (tenant alice-agent): ")
    assert "s3 -> local restarts its CVM on an empty volume" in refusal
    assert "stays in R2 bucket openclaw-alice-agent (kept, not deleted)" in refusal
    allowed = with_tenant(config, "alice-agent", storage="local", allowDataLoss=True)
    assert deployment_refusals(settings_of(allowed), outputs) == []

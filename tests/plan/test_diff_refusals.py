"""The offline plan diff flags what the program refuses at preview (components/data_guards.py):
a replaced or removed CVM with local state, naming its opt-in, and a tenant's new bucket."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from plan.__main__ import blocks_for
from plan.diff import FLAG_NEW_BUCKET, OwnerChanges, diff_plans
from tests.support.stack_configs import prod_config


@pytest.fixture(scope="module")
def prod() -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    config, secret_keys = prod_config()
    return config, secret_keys, blocks_for(config, secret_keys, "prod")


def changes(
    prod: tuple[dict[str, Any], list[str], list[dict[str, Any]]], head: dict[str, Any]
) -> dict[str, OwnerChanges]:
    _, secret_keys, base = prod
    keys = [key for key in secret_keys if key in head]
    return {c.owner: c for c in diff_plans(base, blocks_for(head, keys, "prod"))}


def with_tenant(config: dict[str, Any], name: str, **fields: Any) -> dict[str, Any]:
    changed = copy.deepcopy(config)
    next(t for t in changed["tenants"] if t["name"] == name).update(fields)
    return changed


def test_a_local_tenants_replacement_is_flagged_refused_unless_allow_data_loss(prod: Any) -> None:
    config = prod[0]
    flags = changes(prod, with_tenant(config, "staging-agent", instanceType="tdx.medium"))
    assert "refused unless allowDataLoss is set" in flags["tenant/staging-agent"].flags
    allowed = with_tenant(config, "staging-agent", instanceType="tdx.medium", allowDataLoss=True)
    assert not any("refused" in f for f in changes(prod, allowed)["tenant/staging-agent"].flags)


def test_a_removed_local_tenant_is_flagged_refused_unless_its_opt_in_was_deployed(
    prod: Any,
) -> None:
    config = copy.deepcopy(prod[0])
    config["tenants"] = [t for t in config["tenants"] if t["name"] != "staging-agent"]
    del config["tenantSecrets"]["staging-agent"]
    staging = changes(prod, config)["tenant/staging-agent"]
    assert "refused unless allowDataLoss was deployed before the removal" in staging.flags
    assert "- delete guard/staging-agent-local-state-needs-allowDataLoss" in staging.lines


def test_a_renamed_mux_is_flagged_refused_naming_mux_allow_data_loss(prod: Any) -> None:
    config = {**prod[0], "muxName": "openclaw-mux-2"}
    old_mux = changes(prod, config)["mux/openclaw-mux"]
    assert "refused unless muxAllowDataLoss was deployed before the removal" in old_mux.flags


def test_a_new_jurisdiction_or_bucket_name_is_flagged_as_a_new_empty_bucket(prod: Any) -> None:
    config = prod[0]
    moved = with_tenant(config, "bob-agent", jurisdiction="default")
    bob = changes(prod, moved)["tenant/bob-agent"]
    assert FLAG_NEW_BUCKET in bob.flags
    assert "+- replace bucket/openclaw-bob-agent-eu" in bob.lines
    assert "  jurisdiction: 'eu' -> 'default'" in bob.lines

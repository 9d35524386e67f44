"""Rollout waves: grouping, and the dependencies the program registers for them."""

from __future__ import annotations

import json
from typing import Any

from components.config_parser import parse_settings
from components.rollout import waves
from components.settings import RawConfig, Settings
from plan.describe import describe
from plan.evaluate import run_program
from tests.support.stack_configs import all_local


def _settings_of(config: dict[str, Any], secret_keys: list[str]) -> Settings:
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    return parse_settings(RawConfig(values=values, secret_keys=frozenset(secret_keys)))


def test_waves_group_tenants_lowest_first_keeping_config_order() -> None:
    config, secret_keys = all_local(4)
    for tenant, wave in zip(config["tenants"], (1, 0, 1, 0), strict=True):
        tenant["rolloutWave"] = wave
    run = run_program(config, secret_keys, preview=True)
    grouped = [[t.name for t in wave] for wave in waves(_settings_of(config, secret_keys).tenants)]
    assert grouped == [["local-agent-1", "local-agent-3"], ["local-agent-0", "local-agent-2"]]
    deploy = {r.name: r for r in run.deploy_commands}
    first_wave = {deploy["local-agent-1-deploy"].urn, deploy["local-agent-3-deploy"].urn}
    for name in ("local-agent-0-deploy", "local-agent-2-deploy"):
        assert first_wave <= set(deploy[name].dependencies)
    for name in ("local-agent-1-deploy", "local-agent-3-deploy"):
        assert not first_wave & set(deploy[name].dependencies)


def test_the_offline_plan_shows_each_tenants_wave() -> None:
    config, secret_keys = all_local(3)
    for tenant, wave in zip(config["tenants"], (0, 2, 1), strict=True):
        tenant["rolloutWave"] = wave
    blocks = describe(run_program(config, secret_keys, preview=True))
    # Waves 0, 1, 2 chain one after another; gaps in the numbers do not matter.
    assert {b["name"]: b["rolloutWave"] for b in blocks if b["kind"] == "cvm"} == {
        "local-agent-0": 0,
        "local-agent-2": 1,
        "local-agent-1": 2,
    }

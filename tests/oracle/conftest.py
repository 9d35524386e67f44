"""Fixtures for the oracle tests: the installed OpenClaw, the program's own mock-run
outputs for one tenant, and one real gateway shared by the tests of a session.

A test that uses `oracle_dir` (tests/conftest.py) carries the `oracle` marker. Without
the oracle it skips, saying how to get it; under CI=true it fails instead.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from driver import protocol
from plan.evaluate import run_program, unwrap
from tests.oracle.fork_schema import without_fork_only_keys
from tests.support.openclaw_oracle import Gateway, OracleState
from tests.support.stack_configs import master_key_for, prod_config

TENANT = "alice-agent"


@dataclass(frozen=True)
class TenantRun:
    """What the program generated for one tenant of the prod stack (mock runtime)."""

    master_key: str
    bootstrap_config: dict[str, Any]  # decoded OPENCLAW_CONFIG_B64 of its CVM
    gateway_token: str  # tenantSecrets.<name>.gatewayToken
    dashboard_url: str  # tenantSecrets.<name>.dashboardUrl
    openclaw_id: str  # tenants.<name>.openclawId


@pytest.fixture(scope="session")
def tenant_run() -> TenantRun:
    config, secret_keys = prod_config()
    run = run_program(config, secret_keys)
    environment = unwrap(run.named(f"{TENANT}-deploy").inputs["environment"])
    encoded = environment[protocol.env_value_var("OPENCLAW_CONFIG_B64")]
    exports = run.plain_exports
    return TenantRun(
        master_key=master_key_for(TENANT),
        bootstrap_config=json.loads(base64.b64decode(encoded)),
        gateway_token=exports["tenantSecrets"][TENANT]["gatewayToken"],
        dashboard_url=exports["tenantSecrets"][TENANT]["dashboardUrl"],
        openclaw_id=exports["tenants"][TENANT]["openclawId"],
    )


@pytest.fixture(scope="session")
def gateway_state(oracle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> OracleState:
    """The tenant's bootstrap config as upstream can run it (fork-only keys removed)."""
    state = OracleState(oracle_dir, tmp_path_factory.mktemp("oracle-gateway"))
    return state


@pytest.fixture(scope="session")
def gateway(gateway_state: OracleState, tenant_run: TenantRun) -> Iterator[Gateway]:
    gateway_state.write_config(without_fork_only_keys(tenant_run.bootstrap_config))
    with gateway_state.running_gateway() as running:
        yield running

"""The real OpenClaw loads the bootstrap openclaw.json the program renders for a tenant.

The config comes from the program's mock run (OPENCLAW_CONFIG_B64 of the tenant's CVM),
written as `openclaw.json` into a fresh state dir, with the image's DSTACK_* variables.
`openclaw config get` validates the whole file the way the gateway does at boot
(schema, env substitution, plugin checks) and lists every issue as `- <path>: <message>`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.oracle.conftest import TenantRun
from tests.oracle.fork_schema import FORK_ONLY_KEYS, fork_value_problems, without_fork_only_keys
from tests.support.openclaw_oracle import DSTACK_ENV, CliResult, OracleState

ISSUE_LINE = re.compile(r"^\s*- (?P<path>\S+): (?P<message>.+)$")


def _issues(result: CliResult) -> set[tuple[str, str]]:
    # The CLI prints the same list in up to three frames (log line, error, doctor hint).
    return {
        (match["path"], match["message"])
        for line in (result.stdout + result.stderr).splitlines()
        if (match := ISSUE_LINE.match(line))
    }


def _load(oracle_dir: Path, root: Path, config: dict) -> tuple[OracleState, CliResult]:
    state = OracleState(oracle_dir, root)
    state.write_config(config)
    return state, state.run_cli(["config", "get", "gateway", "--json"])


def test_upstream_reports_exactly_the_fork_only_keys_of_the_rendered_config(
    oracle_dir: Path, tmp_path: Path, tenant_run: TenantRun
) -> None:
    _, result = _load(oracle_dir, tmp_path, tenant_run.bootstrap_config)
    expected = {
        (entry.reported_path, f'Unrecognized key: "{entry.key}"') for entry in FORK_ONLY_KEYS
    }
    assert result.returncode != 0
    assert _issues(result) == expected, result.stdout + result.stderr


def test_inbound_url_placeholders_are_the_image_env_openclaw_substitutes(
    oracle_dir: Path, tmp_path: Path, tenant_run: TenantRun
) -> None:
    # With the image's DSTACK_* variables the config loads (previous test); without them
    # OpenClaw's env substitution names the first placeholder it cannot fill.
    state = OracleState(oracle_dir, tmp_path)
    state.write_config(tenant_run.bootstrap_config)
    result = state.run_cli(["config", "get", "gateway", "--json"], unset_env=tuple(DSTACK_ENV))
    assert result.returncode != 0
    assert (
        'Missing env var "DSTACK_APP_ID" referenced at config path: '
        "gateway.http.endpoints.mux.inboundUrl"
    ) in result.stdout + result.stderr


def test_fork_only_values_have_the_shape_of_the_forks_schema(tenant_run: TenantRun) -> None:
    assert fork_value_problems(tenant_run.bootstrap_config) == []


def test_fork_value_check_catches_a_value_the_fork_would_reject(tenant_run: TenantRun) -> None:
    config = json.loads(json.dumps(tenant_run.bootstrap_config))
    config["channels"]["telegram"]["accounts"]["mux"]["mux"]["timeoutMs"] = "30s"
    config["gateway"]["http"]["endpoints"]["mux"]["inbound"] = "typo"
    assert len(fork_value_problems(config)) == 2


def test_upstream_accepts_the_rendered_config_without_the_fork_only_keys(
    oracle_dir: Path, tmp_path: Path, tenant_run: TenantRun
) -> None:
    _, result = _load(oracle_dir, tmp_path, without_fork_only_keys(tenant_run.bootstrap_config))
    assert result.returncode == 0, result.stdout + result.stderr
    gateway = json.loads(result.stdout)
    # What OpenClaw read back is what the program meant.
    assert gateway["auth"] == {"mode": "token", "token": tenant_run.gateway_token}
    assert (
        gateway["nodes"]["denyCommands"]
        == tenant_run.bootstrap_config["gateway"]["nodes"]["denyCommands"]
    )

"""`ops status`: compare every CVM in the stack outputs with what Phala reports.

pulumi_command has no refresh, so a CVM deleted or changed outside Pulumi is
invisible to `pulumi preview`. This reads each CVM through the same read-only
API calls the deploy driver uses and reports: does it exist, is it running, is
it still the CVM of that name, and is its compose hash the one the program
deployed (a changed compose, or env keys, means someone deployed by hand).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict

from components.drift import CvmStatus, compare
from driver.phala_cvm import PhalaApi, PhalaApiError, phala_credentials
from ops import ConfigError, OpsError
from ops.stack_outputs import StackOutputs


def check_stack(outputs: StackOutputs, api: PhalaApi) -> list[CvmStatus]:
    targets = [
        ("tenant", tenant.name, tenant.cvm_id, tenant.compose_hash)
        for tenant in outputs.tenants.values()
    ]
    if outputs.mux is not None:
        mux = outputs.mux
        targets.insert(0, ("mux", mux.name, mux.cvm_id, mux.compose_hash))
    results = []
    for role, name, cvm_id, expected in targets:
        try:
            live = api.get_cvm(cvm_id)
        except PhalaApiError as error:
            raise OpsError(f"reading CVM {name} ({cvm_id}) failed: {error}") from None
        results.append(compare(role, name, cvm_id, expected, live))
    return results


def api_from_environment(environ: Mapping[str, str]) -> PhalaApi:
    api_key, prefix = phala_credentials(environ)
    if not api_key:
        raise ConfigError(
            "no Phala Cloud API key: export PHALA_CLOUD_API_KEY=<key>, or run `npx phala login`"
        )
    return PhalaApi(api_key, prefix)


def render_table(results: Sequence[CvmStatus]) -> str:
    rows = [("ROLE", "NAME", "CVM", "STATUS", "COMPOSE", "RESULT")]
    for result in results:
        compose = (
            "-"
            if result.live_compose_hash is None
            else "ok"
            if result.live_compose_hash == result.expected_compose_hash
            else f"{result.live_compose_hash[:12]} != {result.expected_compose_hash[:12]}"
        )
        rows.append(
            (
                result.role,
                result.name,
                result.cvm_id,
                result.live_status or "missing",
                compose,
                "DRIFT: " + "; ".join(result.problems) if result.drifted else "ok",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    drifted = sum(result.drifted for result in results)
    lines.append("")
    lines.append(
        f"{drifted} of {len(results)} CVMs drifted" if drifted else f"all {len(results)} CVMs ok"
    )
    return "\n".join(lines)


def render_json(results: Sequence[CvmStatus]) -> str:
    return json.dumps(
        [asdict(result) | {"drifted": result.drifted} for result in results],
        indent=1,
        sort_keys=True,
    )

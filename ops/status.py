"""`ops status`: compare every CVM in the stack outputs with what Phala reports.

pulumi_command has no refresh, so a CVM deleted or changed outside Pulumi is
invisible to `pulumi preview`. This reads each CVM through the same read-only
API calls the deploy driver uses and reports: does it exist, is it running, is
it still the CVM of that name, and is its compose hash the one the program
deployed (a changed compose, or env keys, means someone deployed by hand).

A CVM that cannot be read (Phala answers with an error, or does not answer) is its own
row, "unknown", and the check goes on with the next one. A rejected API key stops the
command: no CVM could be read with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Final

from components.drift import CvmStatus, compare
from driver.api import PhalaApi, PhalaApiError, phala_credentials
from ops import ConfigError, OpsError
from ops.stack_outputs import StackOutputs

# Exit status of `ops status` (2 stays usage or configuration error, as for every command).
EXIT_OK: Final = 0
EXIT_DRIFT: Final = 1  # at least one CVM drifted (whether or not others are unknown)
EXIT_UNKNOWN: Final = 3  # no drift found, but at least one CVM could not be read


@dataclass(frozen=True)
class Unreachable:
    """A CVM whose state is unknown: reading it failed."""

    role: str
    name: str
    cvm_id: str
    expected_compose_hash: str
    reason: str
    drifted: bool = False


StatusRow = CvmStatus | Unreachable


def exit_status(results: Sequence[StatusRow]) -> int:
    if any(result.drifted for result in results):
        return EXIT_DRIFT
    if any(isinstance(result, Unreachable) for result in results):
        return EXIT_UNKNOWN
    return EXIT_OK


def check_stack(outputs: StackOutputs, api: PhalaApi) -> list[StatusRow]:
    targets = [
        ("tenant", tenant.name, tenant.cvm_id, tenant.compose_hash)
        for tenant in outputs.tenants.values()
    ]
    if outputs.mux is not None:
        mux = outputs.mux
        targets.insert(0, ("mux", mux.name, mux.cvm_id, mux.compose_hash))
    results: list[StatusRow] = []
    for role, name, cvm_id, expected in targets:
        try:
            live = api.get_cvm(cvm_id)
        except PhalaApiError as error:
            if error.status in (401, 403):  # the key, not this CVM: every read would fail
                raise OpsError(f"reading CVM {name} ({cvm_id}) failed: {error}") from None
            results.append(Unreachable(role, name, cvm_id, expected, str(error)))
            continue
        results.append(compare(role, name, cvm_id, expected, live))
    return results


def api_from_environment(environ: Mapping[str, str]) -> PhalaApi:
    api_key, prefix = phala_credentials(environ)
    if not api_key:
        raise ConfigError(
            "no Phala Cloud API key: export PHALA_CLOUD_API_KEY=<key>, or run `npx phala login`"
        )
    return PhalaApi(api_key, prefix)


def render_table(results: Sequence[StatusRow]) -> str:
    rows = [("ROLE", "NAME", "CVM", "STATUS", "COMPOSE", "RESULT")]
    for result in results:
        if isinstance(result, Unreachable):
            reason = f"UNKNOWN: could not read it ({result.reason})"
            rows.append((result.role, result.name, result.cvm_id, "unknown", "-", reason))
            continue
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
    unknown = sum(isinstance(result, Unreachable) for result in results)
    summary = [f"{drifted} of {len(results)} CVMs drifted"] if drifted else []
    if unknown:
        summary.append(f"{unknown} of {len(results)} CVMs unknown (could not be read)")
    lines.append("")
    lines.append(", ".join(summary) if summary else f"all {len(results)} CVMs ok")
    return "\n".join(lines)


def _json_row(result: StatusRow) -> dict[str, object]:
    if isinstance(result, Unreachable):
        return asdict(result) | {"live_status": "unknown", "unknown": True}
    return asdict(result) | {"drifted": result.drifted, "unknown": False}


def render_json(results: Sequence[StatusRow]) -> str:
    return json.dumps([_json_row(result) for result in results], indent=1, sort_keys=True)

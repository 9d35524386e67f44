"""Repairing drift on `pulumi up`, although pulumi_command cannot refresh.

Before deploying, the program reads every CVM the last deployment recorded (read-only
GETs, with the operator's Phala API key from the environment, never an input). A CVM
that is missing or whose compose changed outside Pulumi gets its repair generation
raised by one. The generation is an input of the CVM's Command, so this run takes the
driver's update path, which recreates the CVM or redeploys the program's compose and
env; it is exported, so the next run reads it back and changes nothing.

Without an API key (a PR preview, the offline plan) nothing is read and nothing changes.
A read that fails is a warning, not a failed preview: drift repair must never block a
deploy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pulumi

from components.drift import CvmStatus, compare
from driver.api import PhalaApi, PhalaApiError, phala_credentials

REPAIR_GENERATION_FIELD = "repairGeneration"
PARALLEL_READS = 8


@dataclass(frozen=True)
class RecordedCvm:
    """A CVM as the last deployment's outputs recorded it."""

    role: str
    name: str
    cvm_id: str
    compose_hash: str
    repair_generation: int


def recorded_cvms(tenants: Any, mux: Any) -> list[RecordedCvm]:
    """The CVMs in a previous deployment's `tenants` and `mux` outputs (pure)."""
    records = (
        [("tenant", record) for record in tenants.values()] if isinstance(tenants, dict) else []
    )
    if isinstance(mux, dict):
        records.append(("mux", mux))
    found = []
    for role, record in records:
        if not isinstance(record, dict):
            continue
        name, cvm_id, compose = record.get("name"), record.get("cvmId"), record.get("composeHash")
        generation = record.get(REPAIR_GENERATION_FIELD, 0)
        if (
            isinstance(name, str)
            and isinstance(cvm_id, str)
            and isinstance(compose, str)
            and name
            and cvm_id
            and compose
        ):
            # Numbers come back from stack outputs as floats.
            count = int(generation) if isinstance(generation, int | float) else 0
            found.append(RecordedCvm(role, name, cvm_id, compose, count))
    return found


def next_generations(
    recorded: list[RecordedCvm], verdicts: Mapping[str, CvmStatus]
) -> dict[str, int]:
    """Each recorded CVM's generation, raised by one where the verdict can be repaired."""
    return {
        cvm.name: cvm.repair_generation
        + (1 if cvm.name in verdicts and verdicts[cvm.name].repairable else 0)
        for cvm in recorded
    }


def _observe(api: PhalaApi, cvm: RecordedCvm) -> CvmStatus | None:
    try:
        live = api.get_cvm(cvm.cvm_id)
    except PhalaApiError as error:
        pulumi.log.warn(f"{cvm.role} {cvm.name}: not checked for drift ({error})")
        return None
    verdict = compare(cvm.role, cvm.name, cvm.cvm_id, cvm.compose_hash, live)
    if verdict.repairable:
        pulumi.log.warn(
            f"{cvm.role} {cvm.name}: {'; '.join(verdict.problems)}: "
            "this update redeploys it from the program"
        )
    elif verdict.drifted:
        pulumi.log.warn(f"{cvm.role} {cvm.name}: {'; '.join(verdict.problems)} (not repaired)")
    return verdict


def observe_and_plan(recorded: list[RecordedCvm]) -> dict[str, int]:
    api_key, prefix = phala_credentials(os.environ)
    verdicts: dict[str, CvmStatus] = {}
    if recorded and api_key:
        api = PhalaApi(api_key, prefix)
        with ThreadPoolExecutor(max_workers=PARALLEL_READS) as pool:
            for cvm, verdict in zip(
                recorded, pool.map(lambda c: _observe(api, c), recorded), strict=True
            ):
                if verdict is not None:
                    verdicts[cvm.name] = verdict
    return next_generations(recorded, verdicts)


class RepairPlan:
    """The repair generation of every CVM, from the deployed outputs and a live read."""

    def __init__(
        self, deployed_tenants: pulumi.Output[Any], deployed_mux: pulumi.Output[Any]
    ) -> None:
        self._generations = pulumi.Output.all(deployed_tenants, deployed_mux).apply(
            lambda outputs: observe_and_plan(recorded_cvms(outputs[0], outputs[1]))
        )

    def generation(self, cvm_name: str) -> pulumi.Output[int]:
        return self._generations.apply(lambda generations: generations.get(cvm_name, 0))

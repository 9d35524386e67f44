"""Drift: how a CVM Phala reports differs from the one the last deployment recorded.

pulumi_command cannot refresh, so both `ops status` and the program (before it deploys)
read each CVM and compare it here. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

RUNNING = "running"


@dataclass(frozen=True)
class CvmStatus:
    role: str  # "tenant" or "mux"
    name: str
    cvm_id: str
    expected_compose_hash: str
    live_status: str | None = None  # None when the CVM no longer exists
    live_compose_hash: str | None = None
    live_name: str | None = None
    problems: tuple[str, ...] = field(default=())

    @property
    def drifted(self) -> bool:
        return bool(self.problems)

    @property
    def repairable(self) -> bool:
        """What redeploying the program's compose and env fixes: the driver's update path
        recreates a missing CVM and restores a compose changed outside Pulumi."""
        return self.live_status is None or self.live_compose_hash != self.expected_compose_hash


def compare(
    role: str, name: str, cvm_id: str, expected_hash: str, live: Mapping[str, object] | None
) -> CvmStatus:
    """Pure: the verdict for one CVM, given what Phala reports (None: not found)."""
    if live is None:
        return CvmStatus(role, name, cvm_id, expected_hash, problems=("missing",))
    status = str(live.get("status") or "unknown")
    live_hash = str(live.get("compose_hash") or "")
    live_name = str(live.get("name") or "")
    problems = []
    if live_name != name:
        problems.append(f"renamed to {live_name!r}")
    if status != RUNNING:
        problems.append(f"not running ({status})")
    if live_hash != expected_hash:
        problems.append("compose changed outside Pulumi")
    return CvmStatus(
        role, name, cvm_id, expected_hash, status, live_hash, live_name, tuple(problems)
    )

"""Refusing a run that removes many running tenants at once.

A tenant removed from config is deleted with its CVM (its R2 bucket is kept). One removed
tenant is an ordinary change, but a run that removes all of them, or more than one and
more than a small share, is far more often a mistake (a namespace typo, a bad merge, an
emptied list) than an intent. Such a run is refused, naming every tenant that would go,
unless the operator lists exactly those tenants in `allowTenantRemoval` for that run.
The same rule serves the program (against the last deployment's outputs) and the offline
plan's diff (against the base ref's plan).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from components.config_keys import PROJECT, UNGUARDED_REMOVAL_SHARE

OPT_IN_SETTING = "allowTenantRemoval"


@dataclass(frozen=True)
class TenantRemoval:
    running: tuple[str, ...]  # tenants the last deployment runs
    removed: tuple[str, ...]  # of those, the ones this run removes
    allowed: tuple[str, ...]  # what allowTenantRemoval lists

    @property
    def guarded(self) -> bool:
        """More than one and more than the unguarded share of the running tenants, or all."""
        count = len(self.removed)
        if count == 0:
            return False
        if count == len(self.running):
            return True
        return count > 1 and count > UNGUARDED_REMOVAL_SHARE * len(self.running)

    @property
    def opted_in(self) -> bool:
        return set(self.removed) <= set(self.allowed)

    @property
    def refused(self) -> bool:
        return self.guarded and not self.opted_in

    @property
    def unused_opt_ins(self) -> tuple[str, ...]:
        return tuple(name for name in self.allowed if name not in self.removed)


def tenant_removal(
    running: Iterable[str], configured: Iterable[str], allowed: Iterable[str] = ()
) -> TenantRemoval:
    wanted = set(configured)
    running_names = tuple(sorted(set(running)))
    return TenantRemoval(
        running=running_names,
        removed=tuple(name for name in running_names if name not in wanted),
        allowed=tuple(allowed),
    )


def opt_in_commands(removed: Iterable[str]) -> str:
    return "; ".join(
        f"pulumi config set --path '{OPT_IN_SETTING}[{index}]' {name}"
        for index, name in enumerate(removed)
    )


def refusal_message(removal: TenantRemoval) -> str:
    """One line naming every tenant that would go, and the opt-in for this run."""
    names = ", ".join(removal.removed)
    share = (
        "every running tenant"
        if len(removal.removed) == len(removal.running)
        else f"more than one tenant and more than {UNGUARDED_REMOVAL_SHARE:.0%} of them"
    )
    return (
        f"{PROJECT}:{OPT_IN_SETTING}: this run would remove {len(removal.removed)} of the "
        f"{len(removal.running)} running tenants at once ({share}): {names}. Their CVMs would "
        "be deleted (their R2 buckets are kept). If that is intended, list exactly these "
        f"tenants in {OPT_IN_SETTING} for this `pulumi up`, then remove it: "
        f"{opt_in_commands(removal.removed)}"
    )


def unused_opt_in_warning(removal: TenantRemoval) -> str | None:
    if not removal.unused_opt_ins:
        return None
    return (
        f"{PROJECT}:{OPT_IN_SETTING}: lists {', '.join(removal.unused_opt_ins)}, which this run "
        "does not remove (not running, or still configured); remove it from the list"
    )

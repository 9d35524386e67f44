"""Staged rollouts: tenants grouped into waves, each deployed after the one before.

A tenant's `rolloutWave` (default 0) picks its wave. Every CVM of a wave depends, through
the engine's own dependencies, on every CVM of the wave before it; a CVM's deploy ends
only once it runs and, with phalaVerifyHealth, answers its health check. So a bad image
that fails wave 0 stops the rollout before the next wave is touched. Pure: no resources.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from components.settings import TenantSettings


def waves(tenants: Sequence[TenantSettings]) -> list[list[TenantSettings]]:
    """The tenants by wave, lowest first; config order kept inside a wave."""
    ordered = sorted(tenants, key=lambda tenant: tenant.rollout_wave)
    return [list(group) for _, group in groupby(ordered, key=lambda t: t.rollout_wave)]

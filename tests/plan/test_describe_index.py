"""`describe` looks resources up through an index, not a scan per lookup (issue 13, item 9).

Counting how often the registrations are walked pins the complexity without timing
anything: with a scan per parent lookup, ten times the tenants means ten times the walks
per resource, and the counts below would grow with the fleet.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from plan.describe import describe
from plan.evaluate import ProgramRun, Registration, run_program
from tests.support.stack_configs import many_tenants


class CountingRegistrations(list[Registration]):
    """The run's registrations, counting every full walk over them."""

    walks = 0

    def __iter__(self) -> Iterator[Registration]:
        CountingRegistrations.walks += 1
        return super().__iter__()


def walks_to_describe(tenants: int) -> tuple[int, list[dict[str, Any]]]:
    config, secret_keys = many_tenants(tenants)
    run = run_program(config, secret_keys, preview=True)
    counted = ProgramRun(
        registrations=CountingRegistrations(run.registrations),
        exports=run.exports,
        calls=run.calls,
    )
    CountingRegistrations.walks = 0
    blocks = describe(counted)
    return CountingRegistrations.walks, blocks


def test_describe_walks_the_registrations_a_fixed_number_of_times_whatever_the_fleet_size() -> None:
    small_walks, small_blocks = walks_to_describe(2)
    large_walks, large_blocks = walks_to_describe(10)
    assert len(large_blocks) > len(small_blocks)  # the larger fleet really is larger
    assert large_walks == small_walks
    assert small_walks <= 6


def test_lookups_by_name_and_urn_find_exactly_one_registration() -> None:
    config, secret_keys = many_tenants(2)
    run = run_program(config, secret_keys, preview=True)
    command = run.named("tenant-0000-deploy")
    assert run.by_urn(command.urn) is command
    assert run.by_urn(command.parent).type == "openclaw-phala:index:PhalaCvm"

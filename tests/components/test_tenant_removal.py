"""The mass-removal guard: its rule, its message, and the program refusing under the mock
runtime (the real engine: tests/engine/test_tenant_removal_guard.py)."""

from __future__ import annotations

import pulumi
import pytest

from components.tenant_removal import refusal_message, tenant_removal, unused_opt_in_warning
from plan.evaluate import run_program
from tests.support.stack_configs import all_s3

RUNNING_3 = ["a-agent", "b-agent", "c-agent"]
RUNNING_20 = [f"tenant-{i:02d}" for i in range(20)]


@pytest.mark.parametrize(
    ("running", "configured", "guarded"),
    [
        (RUNNING_3, RUNNING_3, False),
        (RUNNING_3, ["a-agent", "b-agent"], False),  # one of three: an ordinary change
        (RUNNING_3, ["a-agent"], True),  # two of three
        (RUNNING_3, [], True),  # all of them
        (["a-agent"], [], True),  # the only one is all of them
        (RUNNING_20, RUNNING_20[2:], False),  # two of twenty: not more than a tenth
        (RUNNING_20, RUNNING_20[3:], True),  # three of twenty
        ([], ["a-agent"], False),  # a first deploy removes nothing
    ],
)
def test_a_run_removing_more_than_a_small_share_or_all_is_guarded(
    running: list[str], configured: list[str], guarded: bool
) -> None:
    assert tenant_removal(running, configured).guarded is guarded
    assert tenant_removal(running, configured).refused is guarded


def test_the_opt_in_must_list_every_tenant_that_would_go() -> None:
    assert tenant_removal(RUNNING_3, [], ["a-agent", "b-agent"]).refused
    assert not tenant_removal(RUNNING_3, [], RUNNING_3).refused


def test_the_message_lists_what_would_go_and_names_the_setting() -> None:
    message = refusal_message(tenant_removal(RUNNING_3, ["c-agent"]))
    assert message.startswith(
        "openclaw-phala:allowTenantRemoval: this run would remove 2 of the 3 running tenants "
        "at once (more than one tenant and more than 10% of them): a-agent, b-agent."
    )
    assert "pulumi config set --path 'allowTenantRemoval[0]' a-agent" in message
    assert "pulumi config set --path 'allowTenantRemoval[1]' b-agent" in message
    assert "\n" not in message


def test_a_leftover_opt_in_is_warned() -> None:
    warning = unused_opt_in_warning(tenant_removal(RUNNING_3, RUNNING_3, ["x-agent"]))
    assert warning is not None and "lists x-agent, which this run does not remove" in warning


def _deployed(names: list[str]) -> dict[str, object]:
    return {"tenants": {name: {"name": name} for name in names}}


def test_the_program_refuses_removing_every_running_tenant() -> None:
    config, secret_keys = all_s3(1)  # s3-agent-0 stays configured; 0 and 1 were running
    config["tenants"] = []
    config["tenantSecrets"] = {}
    deployed = _deployed(["s3-agent-0", "s3-agent-1"])
    with pytest.raises(pulumi.RunError) as info:
        run_program(config, secret_keys, preview=True, deployed_outputs=deployed)
    assert "would remove 2 of the 2 running tenants at once" in str(info.value)
    assert "s3-agent-0, s3-agent-1" in str(info.value)
    config["allowTenantRemoval"] = ["s3-agent-0", "s3-agent-1"]
    run = run_program(config, secret_keys, preview=True, deployed_outputs=deployed)
    assert run.deploy_commands == []

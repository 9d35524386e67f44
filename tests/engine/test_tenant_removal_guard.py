"""The mass-removal guard under the real engine: a run that would remove every running
tenant fails preview and up before anything is deleted, naming each tenant; listing them
in allowTenantRemoval lets that one run through; the leftover opt-in is then warned."""

from __future__ import annotations

from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import STACK, local_stack_config, write_requests

TENANTS = ("going-agent-0", "going-agent-1", "going-agent-2")


def test_removing_every_running_tenant_is_refused_until_each_is_listed(
    workspace: PulumiWorkspace, emulator: PhalaCloudEmulator
) -> None:
    config, secret_keys = local_stack_config(TENANTS)
    # allowDataLoss releases the local-volume guard, so only the removal guard stands.
    config["tenants"] = [{**tenant, "allowDataLoss": True} for tenant in config["tenants"]]
    workspace.init_stack(STACK)
    workspace.configure(STACK, config, secret_keys)
    workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()
    assert {cvm.name for cvm in emulator.cvms()} == set(TENANTS)

    # The fleet disappears from config, as a namespace typo or an emptied list would do.
    workspace.write_plain_config(STACK, {"tenants": []})
    workspace.remove_config(STACK, "tenantSecrets")
    expected = (
        "openclaw-phala:allowTenantRemoval: this run would remove 3 of the 3 running tenants "
        "at once (every running tenant): going-agent-0, going-agent-1, going-agent-2."
    )
    preview = workspace.run("preview", "--stack", STACK)
    assert preview.returncode != 0 and expected in preview.output, preview.output

    emulator.clear_log()
    refused = workspace.run("up", "--yes", "--skip-preview", "--stack", STACK)
    assert refused.returncode != 0 and expected in refused.output
    assert write_requests(emulator) == [], "a refused removal must not delete anything"
    assert {cvm.name for cvm in emulator.cvms()} == set(TENANTS)

    workspace.write_plain_config(STACK, {"allowTenantRemoval": list(TENANTS)})
    workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()
    assert [cvm.name for cvm in emulator.cvms() if cvm.name in TENANTS] == []

    # Left in place, the opt-in removes nothing more and is warned about.
    again = workspace.run("preview", "--expect-no-changes", "--stack", STACK).expect_success()
    assert "allowTenantRemoval: lists going-agent-0, going-agent-1, going-agent-2" in again.output

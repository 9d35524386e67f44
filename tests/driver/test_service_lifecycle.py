"""The driver against the Phala service as it behaves in time: an update restarts the CVM,
a delete takes a while, a busy CVM refuses changes, reads are rate limited, errors are
structured. Each test runs against every mode of the behaviours no source settles
(emulators/phala/behaviour.py DRIVER_MODES); FIDELITY.md there cites the sources."""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from components.compose import mux_compose, openclaw_compose
from driver import protocol
from emulators.phala import (
    DRIVER_MODES,
    STATUS_DELETING,
    STATUS_RUNNING,
    DeletingView,
    PhalaCloudEmulator,
)
from emulators.phala.errors import StructuredError
from tests.driver.conftest import FAST_HOSTILE_TIMINGS, make_sandbox, start_emulator
from tests.driver.driver_sandbox import (
    MUX_IMAGE,
    OPENCLAW_IMAGE,
    OPENCLAW_IMAGE_V2,
    Sandbox,
    default_env,
    driver_inputs,
    only_cvm,
    patches,
    provisions,
    recorded_stdout,
    wait_until,
)
from tests.support.emulator_seed import api_call, seed_cvm
from tests.support.phala_cli import PHALA_BIN

V1 = openclaw_compose(OPENCLAW_IMAGE)
V2 = openclaw_compose(OPENCLAW_IMAGE_V2)


# Which modes matter to which test: the hash's timing to updates, the deleted view to
# deletes, the compose_file form to the role check; the rest run in the default mode.
UPDATE_MODES = ("default", "alternate-update")
DELETE_MODES = ("default", "tombstones-string-compose", "deletes-hidden-at-once")
COMPOSE_FORM_MODES = ("default", "tombstones-string-compose")
ERROR_MODES = ("default", "alternate-update")


def test_every_mode_is_exercised() -> None:
    modes = {*UPDATE_MODES, *DELETE_MODES, *COMPOSE_FORM_MODES, *ERROR_MODES}
    assert modes == set(DRIVER_MODES)


@pytest.fixture
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox whose emulator runs one mode (the test's parameter, else the default),
    with the suite's fast hostile timings."""
    mode = getattr(request, "param", "default")
    behaviour = replace(DRIVER_MODES[mode], timings=FAST_HOSTILE_TIMINGS)
    emulator = start_emulator(behaviour)
    try:
        yield make_sandbox(emulator, tmp_path)
    finally:
        emulator.stop()


def settled(emulator: PhalaCloudEmulator, name: str) -> bool:
    cvm = only_cvm(emulator, name)
    return cvm.status == STATUS_RUNNING and not cvm.in_progress


THEIR_COMPOSE = "services:\n  someone-elses:\n    image: busybox\n"


def hold_their_update(emulator: PhalaCloudEmulator, cvm_id: str) -> None:
    """Someone else's update (another operator, the dashboard) starts on the CVM now and
    stays in progress until released."""
    api_call(emulator, "PATCH", f"/cvms/{cvm_id}", {"docker_compose_file": THEIR_COMPOSE})
    emulator.make_stuck(cvm_id)


def hides_deletions(emulator: PhalaCloudEmulator) -> bool:
    return emulator.behaviour.deleting_view is DeletingView.HIDDEN


def hold_a_deletion(emulator: PhalaCloudEmulator, cvm_id: str) -> None:
    """Someone deletes the CVM now; it stays "deleting" until released."""
    api_call(emulator, "DELETE", f"/cvms/{cvm_id}")
    emulator.make_stuck(cvm_id)


def release_their_update(emulator: PhalaCloudEmulator, cvm_id: str) -> None:
    emulator.reset_faults()
    emulator.finish_pending(cvm_id)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    wait_until(condition, what, timeout=60)


def wait_until_polled(emulator: PhalaCloudEmulator, cvm_id: str, times: int) -> None:
    """Until the driver has read the CVM `times` times (it is waiting on it)."""
    path = f"^/cvms/{cvm_id.replace('-', '')}$"
    wait_for(lambda: emulator.count("GET", path) >= times, f"{times} reads of the CVM")


# --------------------------------------------------------------------------- 1. restarts


@pytest.mark.parametrize("service", UPDATE_MODES, indirect=True)
def test_an_update_returns_only_once_the_restarted_cvm_serves_the_new_compose(
    service: Sandbox,
) -> None:
    emulator = service.emulator
    cvm = seed_cvm(emulator, "rhea-gateway", V1)
    # The service keeps saying "running" for a while after it accepts the update.
    emulator.configure(update_grace=1.0)

    result = service.run("update", driver_inputs("rhea-gateway", compose=V2), recorded_stdout(cvm))

    assert result.returncode == 0, result.stderr
    after = only_cvm(emulator, "rhea-gateway")
    assert (after.status, after.in_progress, after.restarts) == (STATUS_RUNNING, False, 1)
    assert after.docker_compose_file == V2
    # The hash recorded is the one the CVM runs now, so the next run sees no drift.
    assert result.record["composeHash"] == after.compose_hash != cvm.compose_hash


@pytest.mark.parametrize("service", UPDATE_MODES, indirect=True)
def test_an_update_passing_through_stopped_is_not_a_failure(service: Sandbox) -> None:
    emulator = service.emulator
    cvm = seed_cvm(emulator, "saul-gateway", V1)
    # Polls land in the stop phase: stopped while the new image is pulled.
    emulator.configure(update_grace=0.3, stop=0.05, stopped=1.0)

    result = service.run("update", driver_inputs("saul-gateway", compose=V2), recorded_stdout(cvm))

    assert result.returncode == 0, result.stderr
    assert settled(emulator, "saul-gateway")
    assert only_cvm(emulator, "saul-gateway").restarts == 1


@pytest.mark.parametrize("service", UPDATE_MODES, indirect=True)
def test_an_env_only_update_waits_for_its_restart(service: Sandbox) -> None:
    emulator = service.emulator
    created = service.run("create", driver_inputs("tess-gateway"))
    assert created.returncode == 0, created.stderr
    emulator.configure(update_grace=0.5)
    rotated = default_env("openclaw")
    inputs = driver_inputs(
        "tess-gateway",
        env=type(rotated)(
            values={**rotated.values, "REDPILL_API_KEY": "rp-rotated-0000111122223333"},
            secret_names=rotated.secret_names,
        ),
    )

    result = service.run("update", inputs, created.stdout)

    assert result.returncode == 0, result.stderr
    after = only_cvm(emulator, "tess-gateway")
    assert (after.in_progress, after.restarts) == (False, 1)
    assert emulator.decrypted_env(after)["REDPILL_API_KEY"] == "rp-rotated-0000111122223333"


# --------------------------------------------------------------------------- 2. deletes


@pytest.mark.parametrize("service", DELETE_MODES, indirect=True)
def test_a_replacement_waits_for_the_old_cvm_to_go_before_creating_its_successor(
    service: Sandbox,
) -> None:
    emulator = service.emulator
    old = seed_cvm(emulator, "uma-gateway", V1)
    # Where the service hides a CVM it is deleting, nothing can wait for it: the delete
    # outlasts both commands there, so the successor is always made while the old one is
    # still going (a fast CLI once made that a race of this test's own).
    emulator.configure(delete=30.0 if hides_deletions(emulator) else 1.0)
    inputs = driver_inputs("uma-gateway", instance_type="tdx.large")

    deleted = service.run("delete", inputs, recorded_stdout(old))
    created = service.run("create", inputs)

    assert deleted.returncode == 0, deleted.stderr
    assert created.returncode == 0, created.stderr
    if hides_deletions(emulator):
        others = [c for c in emulator.cvms() if c.name == "uma-gateway" and not c.deleted]
        (successor,) = [c for c in others if c.status != STATUS_DELETING]
        assert [c.vm_uuid for c in others if c is not successor] == [old.vm_uuid]
    else:
        assert "waiting for CVM uma-gateway" in deleted.stderr
        successor = only_cvm(emulator, "uma-gateway")
    assert successor.vm_uuid == created.record["cvmId"] != old.vm_uuid
    assert successor.instance_type == "tdx.large"


@pytest.mark.parametrize("service", DELETE_MODES, indirect=True)
def test_drift_repair_never_adopts_a_cvm_that_is_being_deleted(service: Sandbox) -> None:
    emulator = service.emulator
    dying = seed_cvm(emulator, "vic-gateway", V1)
    hold_a_deletion(emulator, dying.vm_uuid)
    process = service.start("update", driver_inputs("vic-gateway"), recorded_stdout(dying))

    provisions_while_dying = 0
    if not hides_deletions(emulator):  # else the dying CVM is gone for every client
        wait_until_polled(emulator, dying.vm_uuid, times=3)
        provisions_while_dying = provisions(emulator)
    release_their_update(emulator, dying.vm_uuid)
    result = service.finish(process)

    assert result.returncode == 0, result.stderr
    assert provisions_while_dying == 0  # its name was not reused before it was gone
    successor = only_cvm(emulator, "vic-gateway")
    assert successor.vm_uuid == result.record["cvmId"] != dying.vm_uuid
    assert patches(emulator) == 0  # nothing was sent to the dying CVM
    assert provisions(emulator) == 1


@pytest.mark.parametrize("service", DELETE_MODES, indirect=True)
def test_a_create_waits_out_a_dying_cvm_of_its_name(service: Sandbox) -> None:
    emulator = service.emulator
    dying = seed_cvm(emulator, "wynn-gateway", V1)
    hold_a_deletion(emulator, dying.vm_uuid)
    process = service.start("create", driver_inputs("wynn-gateway"))

    provisions_while_dying = 0
    if not hides_deletions(emulator):
        wait_until_polled(emulator, dying.vm_uuid, times=2)
        provisions_while_dying = provisions(emulator)
    release_their_update(emulator, dying.vm_uuid)
    result = service.finish(process)

    assert result.returncode == 0, result.stderr
    assert provisions_while_dying == 0
    assert "adopting" not in result.stderr
    assert only_cvm(emulator, "wynn-gateway").vm_uuid == result.record["cvmId"] != dying.vm_uuid


@pytest.mark.parametrize("service", DELETE_MODES, indirect=True)
def test_a_delete_that_outlasts_the_wait_fails_naming_the_cvm_and_a_rerun_finishes(
    service: Sandbox,
) -> None:
    emulator = service.emulator
    cvm = seed_cvm(emulator, "xan-gateway", V1)
    emulator.configure(delete=600.0)
    inputs = driver_inputs("xan-gateway", wait_timeout_seconds=1)

    timed_out = service.run("delete", inputs, recorded_stdout(cvm))
    emulator.finish_pending(cvm.vm_uuid)
    rerun = service.run("delete", inputs, recorded_stdout(cvm))

    if hides_deletions(emulator):  # gone for every client the moment it was accepted
        assert (timed_out.returncode, rerun.returncode) == (0, 0), timed_out.stderr
        assert emulator.count("DELETE") == 1
        return
    assert timed_out.returncode == 1
    assert "CVM xan-gateway" in timed_out.stderr
    assert "waiting for its deletion to finish" in timed_out.stderr
    assert rerun.returncode == 0, rerun.stderr
    assert emulator.count("DELETE") == 1  # the re-run waits; it does not delete again
    assert emulator.cvm_by_name("xan-gateway") is None


# --------------------------------------------------------------------------- 3. busy CVMs


def test_a_busy_cvm_is_waited_out_then_updated(service: Sandbox) -> None:
    emulator = service.emulator
    cvm = seed_cvm(emulator, "yuri-gateway", V1)
    hold_their_update(emulator, cvm.vm_uuid)
    process = service.start(
        "update", driver_inputs("yuri-gateway", compose=V2), recorded_stdout(cvm)
    )

    wait_until_polled(emulator, cvm.vm_uuid, times=3)
    patches_while_busy = patches(emulator)
    release_their_update(emulator, cvm.vm_uuid)
    result = service.finish(process)

    assert result.returncode == 0, result.stderr
    assert "is busy" in result.stderr
    assert patches_while_busy == 1  # only theirs: ours waited
    after = only_cvm(emulator, "yuri-gateway")
    assert after.docker_compose_file == V2  # ours came after theirs
    assert [revision.source for revision in after.revisions][-1] == "update"
    assert [r.status for r in emulator.requests("PATCH")] == [202, 202]


def test_a_cvm_that_stays_busy_fails_naming_it_within_the_wait(service: Sandbox) -> None:
    emulator = service.emulator
    cvm = seed_cvm(emulator, "zed-gateway", V1)
    emulator.make_stuck("zed-gateway")
    inputs = driver_inputs("zed-gateway", compose=V2, wait_timeout_seconds=1)

    result = service.run("update", inputs, recorded_stdout(cvm))

    assert result.returncode == 1
    assert f"CVM zed-gateway ({cvm.vm_uuid})" in result.stderr
    assert "(an operation in progress)" in result.stderr
    assert "waiting for another operation to end" in result.stderr
    assert patches(emulator) == 0


def test_a_delete_of_a_busy_cvm_waits_for_it_to_be_free(service: Sandbox) -> None:
    emulator = service.emulator
    cvm = seed_cvm(emulator, "abel-gateway", V1)
    hold_their_update(emulator, cvm.vm_uuid)
    process = service.start("delete", driver_inputs("abel-gateway"), recorded_stdout(cvm))

    wait_until_polled(emulator, cvm.vm_uuid, times=3)
    deletes_while_busy = emulator.count("DELETE")
    release_their_update(emulator, cvm.vm_uuid)
    result = service.finish(process)

    assert result.returncode == 0, result.stderr
    assert deletes_while_busy == 0
    assert emulator.cvm_by_name("abel-gateway") is None
    assert [r.status for r in emulator.requests("DELETE")] == [204]


def test_a_patch_refused_because_another_operation_just_began_is_sent_again(
    service: Sandbox,
) -> None:
    emulator = service.emulator
    cvm = seed_cvm(emulator, "bree-gateway", V1)
    # Between the driver's read (free) and its PATCH, someone else's update begins: a
    # wrapper starts it just before the real CLI runs, once, and holds it in progress.
    marker = service.scratch / "raced"
    racing_cli = service.scratch / "phala-racing-wrapper"
    racing_cli.write_text(
        "#!/bin/sh\n"
        f"if [ ! -e {shlex.quote(str(marker))} ]; then\n"
        f"  touch {shlex.quote(str(marker))}\n"
        f"  {shlex.quote(sys.executable)} -c {shlex.quote(RACE_SCRIPT)} "
        f"{shlex.quote(emulator.api_prefix)} {shlex.quote(emulator.api_key)} {cvm.vm_uuid}\n"
        "fi\n"
        f'exec {shlex.quote(str(PHALA_BIN))} "$@"\n'
    )
    racing_cli.chmod(0o755)
    emulator.make_stuck("bree-gateway")  # the racer's update, once it starts, holds
    emulator.set_status(cvm.vm_uuid, STATUS_RUNNING)  # but the CVM is free until then
    process = service.start(
        "update",
        driver_inputs("bree-gateway", compose=V2),
        recorded_stdout(cvm),
        overrides={protocol.CLI_OVERRIDE: str(racing_cli)},
    )

    wait_for(lambda: [r.status for r in emulator.requests("PATCH")] == [202, 409], "the 409")
    # Release only once the driver has looked again and is waiting on the busy CVM.
    reads = emulator.count("GET", f"^/cvms/{cvm.vm_uuid.replace('-', '')}$")
    wait_until_polled(emulator, cvm.vm_uuid, times=reads + 2)
    release_their_update(emulator, cvm.vm_uuid)
    result = service.finish(process)

    assert result.returncode == 0, result.stderr
    assert "refused the update while busy; retrying" in result.stderr
    assert [r.status for r in emulator.requests("PATCH")] == [202, 409, 202]
    after = only_cvm(emulator, "bree-gateway")
    assert after.docker_compose_file == V2 and settled(emulator, "bree-gateway")


# An update by someone else, sent straight to the API: argv is (api prefix, key, cvm id).
RACE_SCRIPT = """
import json, sys, urllib.request
prefix, key, cvm_id = sys.argv[1:4]
body = json.dumps({"docker_compose_file": "services:\\n  racer:\\n    image: busybox\\n"})
request = urllib.request.Request(
    f"{prefix}/cvms/{cvm_id}", data=body.encode(), method="PATCH",
    headers={"Content-Type": "application/json", "X-API-Key": key},
)
urllib.request.urlopen(request, timeout=10).read()
"""


# --------------------------------------------------------------------------- 4. the CLI's wait cap


def test_the_driver_waits_on_its_own_never_through_the_clis_capped_wait(service: Sandbox) -> None:
    emulator = service.emulator
    cli_log = service.logging_cli()
    cvm = seed_cvm(emulator, "cole-gateway", V1)
    emulator.configure(update_grace=0.5)

    result = service.run(
        "update",
        driver_inputs("cole-gateway", compose=V2, wait_timeout_seconds=900),
        recorded_stdout(cvm),
        overrides=cli_log.overrides,
    )

    assert result.returncode == 0, result.stderr
    assert "--wait" not in cli_log.argv_text()
    assert settled(emulator, "cole-gateway")


# --------------------------------------------------------------------------- 5. compose_file forms


@pytest.mark.parametrize("service", COMPOSE_FORM_MODES, indirect=True)
def test_the_role_check_reads_the_compose_in_either_form(service: Sandbox) -> None:
    emulator = service.emulator
    mux = seed_cvm(emulator, "dora-mux", mux_compose(MUX_IMAGE))

    result = service.run("update", driver_inputs("dora-mux", role="openclaw"), recorded_stdout(mux))

    assert result.returncode == 1
    assert "it runs the mux-server service" in result.stderr
    assert patches(emulator) == 0


# --------------------------------------------------------------------------- 6. 429s


def test_a_rate_limited_status_poll_is_retried_after_retry_after(service: Sandbox) -> None:
    emulator = service.emulator
    emulator.inject_error(
        "GET",
        r"^/cvms/[0-9a-f]{32}$",
        status=429,
        detail="Too Many Requests",
        headers={"Retry-After": "1"},
        times=2,
    )

    result = service.run("create", driver_inputs("emil-gateway"))

    assert result.returncode == 0, result.stderr
    statuses = [r.status for r in emulator.requests("GET", r"^/cvms/[0-9a-f]{32}$")]
    assert statuses[:2] == [429, 429] and statuses[-1] == 200


def test_reads_that_stay_rate_limited_fail_saying_so(service: Sandbox) -> None:
    emulator = service.emulator
    cvm = seed_cvm(emulator, "fay-gateway", V1)
    emulator.inject_error("GET", r"^/cvms/", status=429, headers={"Retry-After": "0"}, times=None)

    result = service.run("update", driver_inputs("fay-gateway"), recorded_stdout(cvm))

    assert result.returncode == 1
    assert "HTTP 429" in result.stderr and "still rate limited" in result.stderr


# --------------------------------------------------------------------------- 7. error bodies


@pytest.mark.parametrize("service", ERROR_MODES, indirect=True)
def test_a_structured_api_error_is_quoted_with_its_code_and_message(service: Sandbox) -> None:
    emulator = service.emulator
    cvm = seed_cvm(emulator, "gus-gateway", V1)
    detail = StructuredError("ERR-02-007", "Workspace suspended", [], ["Top up your credits"])
    emulator.inject_error("GET", r"^/cvms/", status=403, detail=detail, times=None)

    result = service.run("update", driver_inputs("gus-gateway"), recorded_stdout(cvm))

    assert result.returncode == 1
    assert "HTTP 403: ERR-02-007: Workspace suspended (Top up your credits)" in result.stderr
    assert re.search(r"check PHALA_CLOUD_API_KEY", result.stderr)

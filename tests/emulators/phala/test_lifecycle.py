"""The emulated service in time, over HTTP: what each phase of an update and a delete
shows, when a busy CVM refuses changes, rate limits, error bodies, and the modes for what
no source settles. Each test pins a row of emulators/phala/FIDELITY.md."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from emulators.phala import (
    API_VERSION_CURRENT,
    API_VERSION_LEGACY,
    STATUS_DELETED,
    STATUS_DELETING,
    STATUS_RUNNING,
    STATUS_STARTING,
    STATUS_STOPPED,
    STATUS_STOPPING,
    STATUS_UPDATING,
    Behaviour,
    ComposeFileForm,
    DeletedView,
    DeletingView,
    HashTiming,
    PhalaCloudEmulator,
    RateLimit,
    Timings,
    UpdateStatuses,
)
from emulators.phala.errors import StructuredPlacement
from emulators.phala.models import MAX_ENV_ITEMS
from tests.support.emulator_seed import api_request, encrypt_env_like_cli, seed_cvm

COMPOSE_V1 = "services:\n  app:\n    image: nginx:1.27\n"
COMPOSE_V2 = "services:\n  app:\n    image: nginx:1.28\n"
# Every phase lasts until a test steps it: what each one shows is looked at in turn.
HELD = Timings(boot=600, update_grace=600, stop=600, stopped=600, restart_boot=600, delete=600)


def request(
    emulator: PhalaCloudEmulator,
    method: str,
    path: str,
    body: Any = None,
    version: str = API_VERSION_CURRENT,
) -> tuple[int, Any, dict[str, str]]:
    return api_request(emulator, method, path, body, version=version)


def get(emulator: PhalaCloudEmulator, cvm_id: str) -> dict[str, Any]:
    status, body, _ = request(emulator, "GET", f"/cvms/{cvm_id}")
    assert status == 200, body
    return body


def patch(emulator: PhalaCloudEmulator, cvm_id: str, compose: str) -> tuple[int, Any]:
    status, body, _ = request(
        emulator, "PATCH", f"/cvms/{cvm_id}", {"docker_compose_file": compose}
    )
    return status, body


@pytest.fixture
def held() -> Iterator[PhalaCloudEmulator]:
    with PhalaCloudEmulator(behaviour=Behaviour(timings=HELD)) as emulator:
        yield emulator


def phases(emulator: PhalaCloudEmulator, cvm_id: str, steps: int) -> list[tuple[str, bool, str]]:
    """(status, in_progress, compose_hash) as GET shows it now and after each step."""
    seen = []
    for index in range(steps + 1):
        if index:
            emulator.step(cvm_id)
        view = get(emulator, cvm_id)
        seen.append((view["status"], view["in_progress"], view["compose_hash"]))
    return seen


# --------------------------------------------------------------------------- updates


def test_an_update_restarts_the_cvm_and_its_hash_changes_when_it_settles(
    held: PhalaCloudEmulator,
) -> None:
    cvm = seed_cvm(held, "restart-app", COMPOSE_V1)

    status, accepted = patch(held, cvm.vm_uuid, COMPOSE_V2)
    seen = phases(held, cvm.vm_uuid, steps=4)

    assert status == 202 and accepted["correlation_id"]
    old, new = cvm.compose_hash, seen[-1][2]
    assert seen == [
        (STATUS_RUNNING, True, old),
        (STATUS_STOPPING, True, old),
        (STATUS_STOPPED, True, old),
        (STATUS_STARTING, True, old),
        (STATUS_RUNNING, False, new),
    ]
    assert new != old
    assert held.cvm(cvm.vm_uuid).restarts == 1


def test_in_the_hash_at_patch_mode_the_new_hash_shows_before_the_restart() -> None:
    behaviour = Behaviour(timings=HELD, hash_timing=HashTiming.AT_PATCH)
    with PhalaCloudEmulator(behaviour=behaviour) as emulator:
        cvm = seed_cvm(emulator, "early-hash", COMPOSE_V1)
        patch(emulator, cvm.vm_uuid, COMPOSE_V2)
        seen = phases(emulator, cvm.vm_uuid, steps=4)

    new = seen[-1][2]
    assert new != cvm.compose_hash
    assert [hash_ for _, _, hash_ in seen] == [new] * 5
    assert seen[0][:2] == (STATUS_RUNNING, True)


def test_in_the_updating_mode_an_update_shows_updating_until_it_runs_again() -> None:
    behaviour = Behaviour(timings=HELD, update_statuses=UpdateStatuses.UPDATING)
    with PhalaCloudEmulator(behaviour=behaviour) as emulator:
        cvm = seed_cvm(emulator, "updating-app", COMPOSE_V1)
        patch(emulator, cvm.vm_uuid, COMPOSE_V2)
        seen = phases(emulator, cvm.vm_uuid, steps=1)
        emulator.finish_pending(cvm.vm_uuid)
        after = get(emulator, cvm.vm_uuid)

    assert [shown[:2] for shown in seen] == [(STATUS_UPDATING, True), (STATUS_RUNNING, False)]
    assert seen[0][2] == cvm.compose_hash != seen[1][2]
    assert (after["status"], after["in_progress"]) == (STATUS_RUNNING, False)
    assert after["compose_hash"] != cvm.compose_hash


def test_progress_names_the_operation_while_it_runs(held: PhalaCloudEmulator) -> None:
    cvm = seed_cvm(held, "progress-app", COMPOSE_V1)
    patch(held, cvm.vm_uuid, COMPOSE_V2)

    during = get(held, cvm.vm_uuid)
    legacy = request(held, "GET", f"/cvms/{cvm.vm_uuid}", version=API_VERSION_LEGACY)[1]
    held.finish_pending(cvm.vm_uuid)
    after = get(held, cvm.vm_uuid)

    assert during["progress"]["target"] == STATUS_RUNNING
    assert during["progress"]["correlation_id"]
    assert legacy["in_progress"] is True
    assert after["progress"] is None and after["in_progress"] is False


def test_a_busy_cvm_refuses_a_patch_and_a_delete_with_409_without_an_error_code(
    held: PhalaCloudEmulator,
) -> None:
    cvm = seed_cvm(held, "busy-app", COMPOSE_V1)
    patch(held, cvm.vm_uuid, COMPOSE_V2)

    patched = patch(held, cvm.vm_uuid, COMPOSE_V1)
    deleted = request(held, "DELETE", f"/cvms/{cvm.vm_uuid}")

    for status, body in (patched, deleted[:2]):
        assert status == 409
        assert isinstance(body["detail"], str) and "in progress" in body["detail"]
    assert held.cvm(cvm.vm_uuid).docker_compose_file == cvm.docker_compose_file


def test_compose_file_comes_back_as_an_object_or_as_its_json_text() -> None:
    for form in ComposeFileForm:
        with PhalaCloudEmulator(behaviour=Behaviour(compose_file_form=form)) as emulator:
            cvm = seed_cvm(emulator, f"form-{form.value}", COMPOSE_V1)
            compose_file = get(emulator, cvm.vm_uuid)["compose_file"]
        document = json.loads(compose_file) if form is ComposeFileForm.STRING else compose_file
        assert isinstance(compose_file, str if form is ComposeFileForm.STRING else dict)
        assert document["docker_compose_file"] == COMPOSE_V1


# --------------------------------------------------------------------------- deletes


def test_a_deleting_cvm_keeps_its_name_and_is_still_read_and_listed(
    held: PhalaCloudEmulator,
) -> None:
    cvm = seed_cvm(held, "dying-app", COMPOSE_V1)

    status, _, _ = request(held, "DELETE", f"/cvms/{cvm.vm_uuid}")
    view = get(held, cvm.vm_uuid)
    listed = request(held, "GET", "/apps?search=dying-app")[1]["dstack_apps"]
    taken = request(held, "POST", "/cvms/provision", _provision("dying-app"), API_VERSION_LEGACY)

    assert status == 204
    assert (view["status"], view["in_progress"]) == (STATUS_DELETING, True)
    assert view["progress"]["target"] == STATUS_DELETED
    assert [app["current_cvm"]["status"] for app in listed] == [STATUS_DELETING]
    assert taken[0] == 409
    assert taken[1]["error_code"] == "ERR-01-004"
    assert "being deleted" in taken[1]["message"]


def test_in_the_hidden_mode_a_deleting_cvm_is_404_and_its_name_free_at_once() -> None:
    behaviour = Behaviour(timings=HELD, deleting_view=DeletingView.HIDDEN)
    with PhalaCloudEmulator(behaviour=behaviour) as emulator:
        cvm = seed_cvm(emulator, "hidden-app", COMPOSE_V1)
        request(emulator, "DELETE", f"/cvms/{cvm.vm_uuid}")
        status, _, _ = request(emulator, "GET", f"/cvms/{cvm.vm_uuid}")
        listed = request(emulator, "GET", "/apps?search=hidden-app")[1]["dstack_apps"]
        reused = request(
            emulator, "POST", "/cvms/provision", _provision("hidden-app"), API_VERSION_LEGACY
        )

    assert (status, listed, reused[0]) == (404, [], 200)


@pytest.mark.parametrize("view", list(DeletedView))
def test_a_finished_delete_is_404_or_a_tombstone_and_frees_the_name(view: DeletedView) -> None:
    behaviour = Behaviour(timings=HELD, deleted_view=view)
    with PhalaCloudEmulator(behaviour=behaviour) as emulator:
        cvm = seed_cvm(emulator, "gone-app", COMPOSE_V1)
        request(emulator, "DELETE", f"/cvms/{cvm.vm_uuid}")
        emulator.step(cvm.vm_uuid)

        status, body, _ = request(emulator, "GET", f"/cvms/{cvm.vm_uuid}")
        listed = request(emulator, "GET", "/apps?search=gone-app")[1]["dstack_apps"]
        reused = request(
            emulator, "POST", "/cvms/provision", _provision("gone-app"), API_VERSION_LEGACY
        )

    if view is DeletedView.GONE:
        assert status == 404 and listed == []
    else:
        assert status == 200
        assert body["status"] == STATUS_DELETED and body["deleted_at"]
        assert [app["current_cvm"] for app in listed] == [None]
    assert reused[0] == 200


# --------------------------------------------------------------------------- limits and errors


def test_calls_past_the_rate_limit_get_429_with_retry_after() -> None:
    behaviour = Behaviour(rate_limit=RateLimit(requests=3, seconds=60))
    with PhalaCloudEmulator(behaviour=behaviour) as emulator:
        answers = [request(emulator, "GET", "/auth/me") for _ in range(4)]

    assert [status for status, _, _ in answers] == [200, 200, 200, 429]
    _, body, headers = answers[-1]
    assert int(headers["Retry-After"]) >= 1
    assert body == {"detail": "Too Many Requests"}


@pytest.mark.parametrize("placement", list(StructuredPlacement))
def test_errors_are_structured_at_the_top_level_or_under_detail(
    placement: StructuredPlacement,
) -> None:
    with PhalaCloudEmulator(behaviour=Behaviour(structured_placement=placement)) as emulator:
        status, body, _ = request(emulator, "GET", "/cvms/no-such-cvm")
        invalid = request(emulator, "POST", "/cvms/provision", _provision("x"), API_VERSION_LEGACY)

    assert status == 404
    structured = body if placement is StructuredPlacement.TOP_LEVEL else body["detail"]
    assert set(structured) == {"error_code", "message", "details", "suggestions", "links"}
    assert structured["error_code"] == "ERR-03-001"
    # Validation errors are FastAPI's, whatever the placement.
    assert invalid[0] == 422 and invalid[1]["detail"][0]["loc"] == ["body", "name"]


def test_more_env_items_than_dstack_takes_is_refused(held: PhalaCloudEmulator) -> None:
    provision = request(held, "POST", "/cvms/provision", _provision("many-envs"), "2025-10-28")[1]
    env = {f"K{index}": "v" for index in range(MAX_ENV_ITEMS + 1)}
    committed = request(
        held,
        "POST",
        "/cvms",
        {
            "app_id": provision["app_id"],
            "compose_hash": provision["compose_hash"],
            "encrypted_env": encrypt_env_like_cli(env, provision["app_env_encrypt_pubkey"]),
        },
        API_VERSION_LEGACY,
    )

    assert committed[0] == 400
    assert "too many env items" in committed[1]["message"]


def _provision(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "instance_type": "tdx.small",
        "kms": "PHALA",
        "compose_file": {"docker_compose_file": COMPOSE_V1, "allowed_envs": []},
    }

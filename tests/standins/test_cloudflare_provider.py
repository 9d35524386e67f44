"""The cloudflare stand-in, behaviour by behaviour against pulumi-cloudflare v6.17.0 over
terraform-provider-cloudflare v5.19.1 and cloudflare-go v6.10.0, talking to the
Cloudflare API emulator: each test pins one row of standins/FIDELITY.md."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2

from emulators.cloudflare import CloudflareEmulator
from standins.cloudflare_provider import (
    BUCKET_TYPE,
    GROUPS_INVOKE,
    TOKEN_TYPE,
    retry_delay,
    should_retry,
)
from tests.standins.plugin_process import as_dict, provider, struct

ACCOUNT = "0123456789abcdef0123456789abcdef"
WRITE_GROUP = "2efd5506f9c8494dacb1fa10a3e7d5b6"
BUCKET_URN = "urn:pulumi:dev::p::cloudflare:index/r2Bucket:R2Bucket::b"
TOKEN_URN = "urn:pulumi:dev::p::cloudflare:index/accountToken:AccountToken::t"
PropertyDiff = provider_pb2.PropertyDiff


@pytest.fixture
def api() -> Iterator[CloudflareEmulator]:
    with CloudflareEmulator(account_id=ACCOUNT) as running:
        yield running


@pytest.fixture
def cloudflare(api: CloudflareEmulator) -> Iterator[Any]:
    env = {
        "CLOUDFLARE_BASE_URL": api.base_url,
        "CLOUDFLARE_API_TOKEN": api.api_token,
        "OPENCLAW_CF_STANDIN_BACKOFF_SCALE": "0.001",
    }
    with provider("cloudflare_provider.py", env=env) as stub:
        stub.Configure(provider_pb2.ConfigureRequest(args=struct({})), timeout=30)
        yield stub


def create(stub: Any, type_: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    urn = BUCKET_URN if type_ == BUCKET_TYPE else TOKEN_URN
    checked = stub.Check(
        provider_pb2.CheckRequest(urn=urn, type=type_, news=struct(inputs)), timeout=30
    )
    reply = stub.Create(
        provider_pb2.CreateRequest(urn=urn, type=type_, properties=checked.inputs), timeout=60
    )
    return reply.id, as_dict(reply.properties)


def bucket(name: str = "tenant-a", **fields: Any) -> dict[str, Any]:
    return {"accountId": ACCOUNT, "name": name, **fields}


def token(resources: str) -> dict[str, Any]:
    return {
        "accountId": ACCOUNT,
        "name": "t",
        "policies": [
            {"effect": "allow", "permissionGroups": [{"id": WRITE_GROUP}], "resources": resources}
        ],
    }


def diff(stub: Any, type_: str, olds: dict[str, Any], news: dict[str, Any]) -> Any:
    return stub.Diff(
        provider_pb2.DiffRequest(
            urn=BUCKET_URN, type=type_, id="x", olds=struct(olds), news=struct(news)
        ),
        timeout=30,
    )


def update(stub: Any, type_: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> Any:
    urn = BUCKET_URN if type_ == BUCKET_TYPE else TOKEN_URN
    return stub.Update(
        provider_pb2.UpdateRequest(
            urn=urn, type=type_, id=id_, olds=struct(olds), news=struct(news)
        ),
        timeout=60,
    )


def read(stub: Any, type_: str, id_: str, state: dict[str, Any]) -> Any:
    urn = BUCKET_URN if type_ == BUCKET_TYPE else TOKEN_URN
    return stub.Read(
        provider_pb2.ReadRequest(urn=urn, type=type_, id=id_, properties=struct(state)),
        timeout=60,
    )


# ----- R2 buckets ----------------------------------------------------------------------


def test_a_jurisdiction_change_is_an_in_place_update(cloudflare: Any) -> None:
    olds = {**bucket(), "jurisdiction": "default", "storageClass": "Standard"}
    reply = diff(cloudflare, BUCKET_TYPE, olds, {**olds, "jurisdiction": "eu"})
    assert reply.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert list(reply.replaces) == []
    assert reply.detailedDiff["jurisdiction"].kind == PropertyDiff.UPDATE


def test_the_update_patches_the_name_under_the_new_jurisdiction_and_fails_with_404(
    cloudflare: Any, api: CloudflareEmulator
) -> None:
    bucket_id, state = create(cloudflare, BUCKET_TYPE, bucket())
    api.clear_log()
    with pytest.raises(grpc.RpcError) as failure:
        update(cloudflare, BUCKET_TYPE, bucket_id, state, {**state, "jurisdiction": "eu"})
    assert failure.value.details().startswith("failed to make http request: PATCH ")
    assert "404 Not Found" in failure.value.details()
    (patch,) = api.request_log
    assert (patch.method, patch.path, patch.jurisdiction) == (
        "PATCH",
        f"/accounts/{ACCOUNT}/r2/buckets/tenant-a",
        "eu",
    )
    assert set(api.buckets()) == {("default", "tenant-a")}


def test_the_update_quietly_adopts_a_same_named_bucket_in_the_new_jurisdiction(
    cloudflare: Any, api: CloudflareEmulator
) -> None:
    bucket_id, state = create(cloudflare, BUCKET_TYPE, bucket())
    create(cloudflare, BUCKET_TYPE, bucket(jurisdiction="eu"))  # e.g. an earlier, kept one
    moved = as_dict(
        update(
            cloudflare, BUCKET_TYPE, bucket_id, state, {**state, "jurisdiction": "eu"}
        ).properties
    )
    assert moved["jurisdiction"] == "eu" and moved["name"] == "tenant-a"


@pytest.mark.parametrize(
    ("field", "value"), [("name", "tenant-b"), ("accountId", "f" * 32), ("location", "weur")]
)
def test_name_account_and_a_configured_location_replace(
    cloudflare: Any, field: str, value: str
) -> None:
    olds = {**bucket(), "jurisdiction": "default", "storageClass": "Standard", "location": "WNAM"}
    reply = diff(cloudflare, BUCKET_TYPE, olds, {**olds, field: value})
    assert list(reply.replaces) == [field]


def test_a_storage_class_change_patches_with_the_storage_class_header(
    cloudflare: Any, api: CloudflareEmulator
) -> None:
    bucket_id, state = create(cloudflare, BUCKET_TYPE, bucket())
    reply = update(
        cloudflare, BUCKET_TYPE, bucket_id, state, {**state, "storageClass": "InfrequentAccess"}
    )
    assert as_dict(reply.properties)["storageClass"] == "InfrequentAccess"
    assert api.buckets()["default", "tenant-a"]["storage_class"] == "InfrequentAccess"


def test_a_bucket_gone_on_refresh_is_dropped_and_jurisdiction_is_not_refreshed(
    cloudflare: Any, api: CloudflareEmulator
) -> None:
    bucket_id, state = create(cloudflare, BUCKET_TYPE, bucket(jurisdiction="eu"))
    refreshed = read(cloudflare, BUCKET_TYPE, bucket_id, state)
    assert refreshed.id == bucket_id and as_dict(refreshed.properties)["jurisdiction"] == "eu"
    api.delete_bucket_behind_back("tenant-a", "eu")
    assert read(cloudflare, BUCKET_TYPE, bucket_id, state).id == ""


# ----- account tokens ------------------------------------------------------------------


def test_token_resources_are_sent_compacted_as_go_does_and_kept_as_the_api_s_bytes(
    cloudflare: Any, api: CloudflareEmulator
) -> None:
    spaced = '{ "com.cloudflare.edge.r2.bucket.a<b" : "*" }'
    token_id, state = create(cloudflare, TOKEN_TYPE, token(spaced))
    sent = '{"com.cloudflare.edge.r2.bucket.a\\u003cb":"*"}'
    assert api.raw_resources(token_id) == [sent]
    assert state["policies"][0]["resources"] == sent
    assert state["value"]["value"] == api.token_value(token_id)
    # The program's spaced text now differs from what the provider keeps: a diff.
    news = token(spaced)
    assert diff(cloudflare, TOKEN_TYPE, state, news).changes == provider_pb2.DiffResponse.DIFF_SOME


def test_token_state_keeps_the_api_s_own_text_byte_for_byte(
    cloudflare: Any, api: CloudflareEmulator
) -> None:
    compact = '{"com.cloudflare.edge.r2.bucket.a":"*"}'
    token_id, state = create(cloudflare, TOKEN_TYPE, token(compact))
    refreshed = as_dict(read(cloudflare, TOKEN_TYPE, token_id, state).properties)
    assert refreshed["policies"][0]["resources"] == compact
    assert refreshed["value"] == state["value"]  # value is never refreshed


def test_resources_that_are_not_json_fail_the_create_not_the_check(cloudflare: Any) -> None:
    checked = cloudflare.Check(
        provider_pb2.CheckRequest(urn=TOKEN_URN, type=TOKEN_TYPE, news=struct(token("{nope"))),
        timeout=30,
    )
    assert list(checked.failures) == []
    with pytest.raises(grpc.RpcError) as failure:
        create(cloudflare, TOKEN_TYPE, token("{nope"))
    assert failure.value.details().startswith("failed to serialize http request")


@pytest.mark.parametrize(
    ("status", "kept"), [("expired", False), ("revoked (exposed)", False), ("disabled", True)]
)
def test_an_expired_or_exposed_token_reads_as_gone(
    cloudflare: Any, api: CloudflareEmulator, status: str, kept: bool
) -> None:
    token_id, state = create(cloudflare, TOKEN_TYPE, token('{"a":"*"}'))
    api.set_token_status(token_id, status)
    assert (read(cloudflare, TOKEN_TYPE, token_id, state).id == token_id) is kept


def test_a_policy_change_is_a_put_of_the_full_body_and_the_value_is_kept(
    cloudflare: Any, api: CloudflareEmulator
) -> None:
    token_id, state = create(cloudflare, TOKEN_TYPE, token('{"a":"*"}'))
    news = token('{"b":"*"}')
    reply = diff(cloudflare, TOKEN_TYPE, state, news)
    assert list(reply.replaces) == []
    api.clear_log()
    updated = as_dict(update(cloudflare, TOKEN_TYPE, token_id, state, news).properties)
    (put,) = api.request_log
    assert put.method == "PUT" and put.body["policies"][0]["resources"] == {"b": "*"}
    assert updated["value"] == state["value"]


# ----- permission groups ---------------------------------------------------------------


def test_the_permission_group_lookup_sends_name_and_scope_as_query_parameters(
    cloudflare: Any, api: CloudflareEmulator
) -> None:
    args = {
        "accountId": ACCOUNT,
        "name": "Workers R2 Storage Write",
        "scope": "com.cloudflare.api.account",
    }
    reply = cloudflare.Invoke(
        provider_pb2.InvokeRequest(tok=GROUPS_INVOKE, args=struct(args)), timeout=30
    )
    result = as_dict(getattr(reply, "return"))
    assert [g["name"] for g in result["results"]] == ["Workers R2 Storage Write"]
    assert result["scope"] == "com.cloudflare.api.account"
    (call,) = api.request_log
    assert call.query == {
        "name": ["Workers R2 Storage Write"],
        "scope": ["com.cloudflare.api.account"],
    }


# ----- the client ----------------------------------------------------------------------


def test_only_the_api_token_config_is_format_checked_not_the_env_var(
    api: CloudflareEmulator,
) -> None:
    with provider("cloudflare_provider.py", env={"CLOUDFLARE_API_TOKEN": "not valid!"}) as stub:
        from_env = stub.CheckConfig(provider_pb2.CheckRequest(news=struct({})), timeout=30)
        assert list(from_env.failures) == []
        bad = stub.CheckConfig(
            provider_pb2.CheckRequest(news=struct({"apiToken": "not valid!"})), timeout=30
        )
    (failure,) = bad.failures
    assert failure.property == "apiToken"
    assert "not valid" not in failure.reason  # the value is never echoed


def test_ten_retries_then_the_error(cloudflare: Any, api: CloudflareEmulator) -> None:
    api.inject_error("POST", "r2/buckets$", 503, times=20)
    with pytest.raises(grpc.RpcError) as failure:
        create(cloudflare, BUCKET_TYPE, bucket())
    assert "503 Service Unavailable" in failure.value.details()
    assert [r.status for r in api.request_log] == [503] * 11


def test_x_should_retry_wins_over_the_status(cloudflare: Any, api: CloudflareEmulator) -> None:
    api.inject_error("POST", "r2/buckets$", 503, headers={"x-should-retry": "false"})
    with pytest.raises(grpc.RpcError):
        create(cloudflare, BUCKET_TYPE, bucket())
    assert len(api.request_log) == 1
    api.clear_log()
    api.inject_error("POST", "r2/buckets$", 400, times=2, headers={"x-should-retry": "true"})
    create(cloudflare, BUCKET_TYPE, bucket())
    assert [r.status for r in api.request_log] == [400, 400, 200]


@pytest.mark.parametrize(
    ("status", "retried"),
    [(408, True), (409, True), (429, True), (500, True), (503, True), (400, False), (404, False)],
)
def test_which_statuses_are_retried(status: int, retried: bool) -> None:
    assert should_retry(status, {}) is retried


def test_a_transport_error_is_retried() -> None:
    assert should_retry(None, None) is True


def test_the_delay_doubles_from_2_s_to_30_s_less_up_to_a_quarter() -> None:
    for attempt, full in enumerate((2, 4, 8, 16, 30, 30, 30)):
        for _ in range(50):
            assert 0.75 * full <= retry_delay({}, attempt) <= full


def test_retry_after_ms_then_retry_after_seconds_or_date_decide_the_delay() -> None:
    assert retry_delay({"Retry-After-Ms": "250", "Retry-After": "9"}, 0) == 0.25
    assert retry_delay({"Retry-After": "1.5"}, 5) == 1.5
    assert retry_delay({"Retry-After": "120"}, 0) == 120  # not capped
    now = datetime(2026, 1, 1, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert retry_delay({"Retry-After": date}, 0, now=now) == 7
    assert retry_delay({"Retry-After": "-3"}, 0) == 0
    assert 1.5 <= retry_delay({"Retry-After": "soon"}, 0) <= 2  # unreadable: the schedule

"""The Cloudflare API emulator on its own: envelope, auth, jurisdictions, tokens, faults.

How the provider reads it is tested under the real engine (tests/engine); these pin the
wire shapes the emulator promises in its docstring."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from emulators.cloudflare import DEFAULT_API_TOKEN, CloudflareEmulator

ACCOUNT = "0123456789abcdef0123456789abcdef"
GROUPS = f"accounts/{ACCOUNT}/tokens/permission_groups"
TOKENS = f"accounts/{ACCOUNT}/tokens"
BUCKETS = f"accounts/{ACCOUNT}/r2/buckets"
WRITE_GROUP = {"id": "2efd5506f9c8494dacb1fa10a3e7d5b6"}


@pytest.fixture
def cloudflare() -> Iterator[CloudflareEmulator]:
    with CloudflareEmulator(account_id=ACCOUNT) as running:
        yield running


def call(
    emulator: CloudflareEmulator,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str = DEFAULT_API_TOKEN,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(  # noqa: S310 - the emulator on 127.0.0.1
        emulator.base_url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
    )
    request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
            return reply.status, json.loads(reply.read()), dict(reply.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def test_base_url_keeps_the_client_v4_prefix(cloudflare: CloudflareEmulator) -> None:
    assert cloudflare.base_url.startswith("http://127.0.0.1:")
    assert cloudflare.base_url.endswith("/client/v4/")


def test_replies_use_the_v4_envelope(cloudflare: CloudflareEmulator) -> None:
    status, body, _ = call(cloudflare, "GET", GROUPS)
    assert status == 200
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    assert all(set(group) == {"id", "name", "scopes"} for group in body["result"])


def test_permission_groups_filter_by_name_with_plus_for_spaces(
    cloudflare: CloudflareEmulator,
) -> None:
    path = f"{GROUPS}?name=Workers+R2+Storage+Bucket+Item+Write"
    _, body, _ = call(cloudflare, "GET", path)
    assert [g["id"] for g in body["result"]] == ["2efd5506f9c8494dacb1fa10a3e7d5b6"]


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [
        ("short", 400, 6003),  # not of the bearer token format
        ("x" * 40, 403, 10000),  # well formed, but not the account's token
    ],
)
def test_bad_bearer_tokens_are_refused_with_an_error_envelope(
    cloudflare: CloudflareEmulator, token: str, status: int, code: int
) -> None:
    got, body, _ = call(cloudflare, "GET", GROUPS, token=token)
    assert got == status
    assert body["success"] is False and body["errors"][0]["code"] == code


def test_buckets_are_kept_per_jurisdiction(cloudflare: CloudflareEmulator) -> None:
    path = BUCKETS
    status, body, _ = call(
        cloudflare, "POST", path, {"name": "tenant-a"}, headers={"cf-r2-jurisdiction": "eu"}
    )
    assert status == 200
    assert body["result"]["jurisdiction"] == "eu"
    assert set(body["result"]) == {
        "name",
        "creation_date",
        "location",
        "storage_class",
        "jurisdiction",
    }
    eu = {"cf-r2-jurisdiction": "eu"}
    assert call(cloudflare, "GET", f"{path}/tenant-a", headers=eu)[0] == 200
    missing = call(cloudflare, "GET", f"{path}/tenant-a", headers={"cf-r2-jurisdiction": "default"})
    assert missing[0] == 404 and missing[1]["errors"][0]["code"] == 10006
    again = call(cloudflare, "POST", path, {"name": "tenant-a"}, headers=eu)
    assert again[0] == 409
    assert call(cloudflare, "DELETE", f"{path}/tenant-a", headers=eu)[1]["result"] == {}


def raw_call(emulator: CloudflareEmulator, method: str, path: str, text: str) -> tuple[int, str]:
    """A call whose body is sent as the exact text given; returns the raw reply."""
    request = urllib.request.Request(  # noqa: S310 - the emulator on 127.0.0.1
        emulator.base_url + path, data=text.encode(), method=method
    )
    request.add_header("Authorization", f"Bearer {DEFAULT_API_TOKEN}")
    with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
        return reply.status, reply.read().decode()


def test_token_value_is_returned_on_create_only(cloudflare: CloudflareEmulator) -> None:
    policy = {
        "effect": "allow",
        "permission_groups": [WRITE_GROUP],
        "resources": {f"com.cloudflare.edge.r2.bucket.{ACCOUNT}_default_a": "*"},
    }
    _, created, _ = call(cloudflare, "POST", TOKENS, {"name": "t", "policies": [policy]})
    token = created["result"]
    assert token["value"] == cloudflare.token_value(token["id"])
    assert token["status"] == "active" and token["last_used_on"] is None
    _, read, _ = call(cloudflare, "GET", f"{TOKENS}/{token['id']}")
    assert "value" not in read["result"]
    assert read["result"]["policies"][0]["resources"] == policy["resources"]
    _, updated, _ = call(
        cloudflare,
        "PUT",
        f"{TOKENS}/{token['id']}",
        {"name": "t2", "policies": [policy]},
    )
    assert updated["result"]["name"] == "t2" and "value" not in updated["result"]
    _, deleted, _ = call(cloudflare, "DELETE", f"{TOKENS}/{token['id']}")
    assert deleted["result"] == {"id": token["id"]}
    assert call(cloudflare, "GET", f"{TOKENS}/{token['id']}")[0] == 404


def test_token_resources_are_echoed_as_the_exact_text_sent(cloudflare: CloudflareEmulator) -> None:
    resources = '{ "com.cloudflare.edge.r2.bucket.x" :"*" }'
    body = (
        '{"name":"t","policies":[{"effect":"allow","permission_groups":'
        f'[{{"id":"{WRITE_GROUP["id"]}"}}],"resources":{resources}}}]}}'
    )
    _, created = raw_call(cloudflare, "POST", TOKENS, body)
    assert f'"resources":{resources}' in created
    token_id = json.loads(created)["result"]["id"]
    assert cloudflare.raw_resources(token_id) == [resources]
    _, read = raw_call(cloudflare, "GET", f"{TOKENS}/{token_id}", "")
    assert f'"resources":{resources}' in read
    assert cloudflare.tokens()[token_id]["policies"][0]["resources"] == {
        "com.cloudflare.edge.r2.bucket.x": "*"
    }


def test_a_token_status_can_change_behind_the_programs_back(
    cloudflare: CloudflareEmulator,
) -> None:
    policy = {"effect": "allow", "permission_groups": [WRITE_GROUP], "resources": {"x": "*"}}
    _, created, _ = call(cloudflare, "POST", TOKENS, {"name": "t", "policies": [policy]})
    token_id = created["result"]["id"]
    cloudflare.set_token_status(token_id, "revoked (exposed)")
    assert call(cloudflare, "GET", f"{TOKENS}/{token_id}")[1]["result"]["status"] == (
        "revoked (exposed)"
    )
    with pytest.raises(ValueError, match="unknown token status"):
        cloudflare.set_token_status(token_id, "revoked")


def test_permission_groups_filter_by_scope(cloudflare: CloudflareEmulator) -> None:
    _, body, _ = call(cloudflare, "GET", f"{GROUPS}?scope=com.cloudflare.api.account")
    assert {g["name"] for g in body["result"]} == {
        "Workers R2 Storage Write",
        "Workers R2 Storage Read",
    }


def test_patch_of_a_name_that_does_not_exist_in_that_jurisdiction_is_404(
    cloudflare: CloudflareEmulator,
) -> None:
    call(cloudflare, "POST", BUCKETS, {"name": "tenant-a"})
    moved = {"cf-r2-jurisdiction": "eu", "cf-r2-storage-class": "Standard"}
    status, body, _ = call(cloudflare, "PATCH", f"{BUCKETS}/tenant-a", headers=moved)
    assert status == 404 and body["errors"][0]["code"] == 10006
    assert set(cloudflare.buckets()) == {("default", "tenant-a")}


def test_faults_carry_the_retry_headers_asked_for(cloudflare: CloudflareEmulator) -> None:
    cloudflare.inject_error(
        "GET", "permission_groups", 503, headers={"Retry-After-Ms": "20", "x-should-retry": "false"}
    )
    status, _, headers = call(cloudflare, "GET", GROUPS)
    assert status == 503
    assert headers["Retry-After-Ms"] == "20" and headers["x-should-retry"] == "false"


def test_faults_fail_the_next_matching_requests_then_stop(cloudflare: CloudflareEmulator) -> None:
    cloudflare.inject_error("GET", "permission_groups", 429, times=2, retry_after=1)
    path = GROUPS
    first = call(cloudflare, "GET", path)
    assert first[0] == 429 and first[2]["Retry-After"] == "1" and first[1]["success"] is False
    assert call(cloudflare, "GET", path)[0] == 429
    assert call(cloudflare, "GET", path)[0] == 200


def test_a_name_taken_elsewhere_cannot_be_created(cloudflare: CloudflareEmulator) -> None:
    cloudflare.take_bucket_name("popular")
    status, body, _ = call(cloudflare, "POST", BUCKETS, {"name": "popular"})
    assert status == 409 and body["errors"][0]["code"] == 10004


def test_another_account_is_refused(cloudflare: CloudflareEmulator) -> None:
    status, body, _ = call(cloudflare, "GET", f"accounts/{'f' * 32}/tokens/permission_groups")
    assert status == 403 and body["errors"][0]["code"] == 9109


def test_the_request_log_never_keeps_the_operator_token_or_a_token_value(
    cloudflare: CloudflareEmulator,
) -> None:
    policy = {
        "effect": "allow",
        "permission_groups": [WRITE_GROUP],
        "resources": {"x": "*"},
    }
    _, created, _ = call(cloudflare, "POST", TOKENS, {"name": "t", "policies": [policy]})
    logged = repr(cloudflare.request_log)
    assert DEFAULT_API_TOKEN not in logged
    assert created["result"]["value"] not in logged

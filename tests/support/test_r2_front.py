"""The R2 front checks what it claims to check, and its faults do what they say (boto3 as
the client, moto behind; no engine needed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from components import r2
from tests.support.moto_server import MotoServer
from tests.support.r2_state import R2StateBucket, r2_state_bucket

KEY = ".pulumi/stacks/openclaw-phala/dev.json"


@pytest.fixture
def state(moto_server: MotoServer, tmp_path: Path) -> Iterator[R2StateBucket]:
    with r2_state_bucket(moto_server, tmp_path / "tls") as bucket:
        yield bucket


def client(
    state: R2StateBucket,
    *,
    key_id: str | None = None,
    secret: str | None = None,
    region: str = "auto",
    attempts: int = 1,
) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=f"https://{state.front.host_port}",
        aws_access_key_id=key_id or state.token_id,
        aws_secret_access_key=secret or r2.s3_secret_access_key(state.token_value),
        region_name=region,
        verify=str(state.front.tls.ca_file),
        config=Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "total_max_attempts": attempts},
            request_checksum_calculation="when_required",
        ),
    )


def error_code(call: Any) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"]


def test_the_derived_credentials_for_region_auto_reach_the_bucket_path_style(
    state: R2StateBucket,
) -> None:
    s3 = client(state)
    s3.put_object(Bucket=state.bucket, Key=KEY, Body=b'{"a": 1}')
    assert s3.get_object(Bucket=state.bucket, Key=KEY)["Body"].read() == b'{"a": 1}'
    assert state.objects() == {KEY: b'{"a": 1}'}  # stored in moto, read behind the front
    (put, get) = state.front.requests
    assert (put.operation, put.key, put.region, put.outcome) == ("PUT", KEY, "auto", "forwarded")
    assert (get.bucket, get.access_key_id) == (state.bucket, state.token_id)


def test_what_r2_would_refuse_is_refused(state: R2StateBucket) -> None:
    bucket = state.bucket
    # The token's value itself is not the secret: R2 wants its SHA-256.
    as_value = client(state, secret=state.token_value)
    assert error_code(lambda: as_value.list_objects_v2(Bucket=bucket)) == "SignatureDoesNotMatch"
    other_id = client(state, key_id="0" * 32)
    assert error_code(lambda: other_id.list_objects_v2(Bucket=bucket)) == "InvalidAccessKeyId"
    aws_region = client(state, region="us-east-1")
    refused = error_code(lambda: aws_region.list_objects_v2(Bucket=bucket))
    assert refused == "AuthorizationHeaderMalformed"
    assert state.keys() == []
    assert all(r.outcome.startswith("refused") for r in state.front.requests)


def test_an_injected_failure_is_an_s3_error_the_sdk_retries(state: R2StateBucket) -> None:
    state.front.faults.fail(lambda r: r.operation == "PUT", status=503, times=1)
    client(state, attempts=3).put_object(Bucket=state.bucket, Key=KEY, Body=b"{}")
    assert [(r.attempt, r.outcome) for r in state.front.requests] == [
        (1, "failed 503"),
        (2, "forwarded"),
    ]
    state.front.faults.fail(lambda r: r.operation == "GET", status=500, times=1)
    assert error_code(lambda: client(state).get_object(Bucket=state.bucket, Key=KEY)) == (
        "InternalError"
    )


def test_a_held_request_waits_for_release_and_a_dropped_one_never_lands(
    state: R2StateBucket,
) -> None:
    s3 = client(state)
    hold = state.front.faults.hold(lambda r: r.operation == "PUT")
    writer = threading.Thread(
        target=s3.put_object, kwargs={"Bucket": state.bucket, "Key": KEY, "Body": b"held"}
    )
    writer.start()
    hold.wait_for(1)
    assert state.keys() == [], "a held write must not land before its release"
    hold.release()
    writer.join(timeout=60)
    assert state.objects() == {KEY: b"held"}

    dropped = state.front.faults.hold(lambda r: r.operation == "PUT")
    failures: list[Exception] = []

    def write_that_is_cut_off() -> None:
        try:
            s3.put_object(Bucket=state.bucket, Key=KEY, Body=b"never")
        except botocore.exceptions.BotoCoreError as error:
            failures.append(error)

    cut_off = threading.Thread(target=write_that_is_cut_off)
    cut_off.start()
    dropped.wait_for(1)
    dropped.drop()
    cut_off.join(timeout=60)
    assert len(failures) == 1, "the writer must see its request fail"
    assert state.objects() == {KEY: b"held"}


def test_an_outage_refuses_everything_from_its_trigger_until_it_ends(
    state: R2StateBucket,
) -> None:
    s3 = client(state)
    s3.put_object(Bucket=state.bucket, Key=KEY, Body=b"{}")
    with state.front.faults.outage(starting_with=lambda r: r.operation == "HEAD") as outage:
        s3.get_object(Bucket=state.bucket, Key=KEY)  # before the trigger: served
        assert error_code(lambda: s3.head_object(Bucket=state.bucket, Key=KEY)) == "503"
        assert error_code(lambda: s3.get_object(Bucket=state.bucket, Key=KEY)) == "SlowDown"
        assert [r.operation for r in outage.wait_refused(2)] == ["HEAD", "GET"]
    assert s3.get_object(Bucket=state.bucket, Key=KEY)["Body"].read() == b"{}"

"""Our Cloudflare resource classes register exactly what the pinned pulumi_cloudflare
SDK's own classes register (components/cloudflare_resources.py): type token, inputs on
the wire, version (which names the default provider in state), options and additional
secret outputs; and the invoke sends the same token, arguments and version.

Differential, under the mock runtime: the same resources are declared once with the SDK
and once with ours, each in a fresh runtime whose monitor records every request."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pulumi
import pulumi_cloudflare
import pytest
from google.protobuf import json_format
from pulumi.runtime.mocks import MockMonitor

from components import cloudflare_resources
from components.cloudflare_resources import AccountToken, R2Bucket, permission_groups_output
from plan.evaluate import FakeCloud

ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
# Fields of a request that are the same whichever class made it, given the same names.
VARIABLE_FIELDS = ("acceptResources", "supportsPartialValues", "sourcePosition", "stackTrace")


class RecordingMonitor(MockMonitor):
    def __init__(self) -> None:
        super().__init__(FakeCloud())
        self.registered: list[dict[str, Any]] = []
        self.invoked: list[dict[str, Any]] = []

    def RegisterResource(self, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            self.registered.append(_as_dict(request))
        return super().RegisterResource(request)

    def Invoke(self, request: Any) -> Any:
        self.invoked.append(_as_dict(request))
        return super().Invoke(request)


def _as_dict(request: Any) -> dict[str, Any]:
    found = json_format.MessageToDict(request)
    for name in VARIABLE_FIELDS:
        found.pop(name, None)
    return found


def recorded(declare: Any) -> RecordingMonitor:
    """Run `declare` as a program of its own under a fresh mock runtime."""
    monitor = RecordingMonitor()
    pulumi.runtime.set_mocks(FakeCloud(), project="openclaw-phala", stack="prod", monitor=monitor)
    pulumi.runtime.test(declare)()
    return monitor


def sdk_resources() -> pulumi.Output[Any]:
    bucket = pulumi_cloudflare.R2Bucket(
        "alice-bucket",
        account_id=ACCOUNT_ID,
        name="openclaw-alice",
        jurisdiction="eu",
        opts=pulumi.ResourceOptions(retain_on_delete=True, replace_on_changes=["jurisdiction"]),
    )
    group = pulumi_cloudflare.get_account_api_token_permission_groups_list_output(
        account_id=ACCOUNT_ID
    )
    token = pulumi_cloudflare.AccountToken(
        "alice-token",
        account_id=ACCOUNT_ID,
        name="openclaw-alice-rw",
        policies=[
            {
                "effect": "allow",
                "permission_groups": [{"id": group.results.apply(lambda r: r[0].id)}],
                "resources": bucket.name.apply(lambda name: json.dumps({f"bucket.{name}": "*"})),
            }
        ],
    )
    return pulumi.Output.all(bucket.name, token.id, token.value)


def our_resources() -> pulumi.Output[Any]:
    bucket = R2Bucket(
        "alice-bucket",
        account_id=ACCOUNT_ID,
        name="openclaw-alice",
        jurisdiction="eu",
        opts=pulumi.ResourceOptions(retain_on_delete=True, replace_on_changes=["jurisdiction"]),
    )
    groups = permission_groups_output(ACCOUNT_ID)
    token = AccountToken(
        "alice-token",
        account_id=ACCOUNT_ID,
        name="openclaw-alice-rw",
        policies=[
            {
                "effect": "allow",
                "permissionGroups": [{"id": groups.apply(lambda r: r[0].id)}],
                "resources": bucket.name.apply(lambda name: json.dumps({f"bucket.{name}": "*"})),
            }
        ],
    )
    return pulumi.Output.all(bucket.name, token.id, token.value)


@pytest.fixture(scope="module")
def both() -> tuple[RecordingMonitor, RecordingMonitor]:
    async def run_sdk() -> None:
        await sdk_resources().future()

    async def run_ours() -> None:
        await our_resources().future()

    return recorded(run_sdk), recorded(run_ours)


def test_the_resources_register_as_the_sdk_registers_them(
    both: tuple[RecordingMonitor, RecordingMonitor],
) -> None:
    sdk, ours = both
    assert [r["type"] for r in ours.registered] == [
        "cloudflare:index/r2Bucket:R2Bucket",
        "cloudflare:index/accountToken:AccountToken",
    ]
    assert ours.registered == sdk.registered
    token = ours.registered[1]
    assert token["additionalSecretOutputs"] == ["value"]
    assert token["version"] == pulumi_cloudflare._utilities.get_version()


def test_the_permission_groups_invoke_is_the_sdks(
    both: tuple[RecordingMonitor, RecordingMonitor],
) -> None:
    sdk, ours = both
    assert len(ours.invoked) == 1
    assert ours.invoked == sdk.invoked


def test_the_version_is_the_installed_sdks() -> None:
    assert cloudflare_resources.sdk_version() == pulumi_cloudflare._utilities.get_version()


def test_the_program_does_not_import_the_sdk() -> None:
    # Importing the SDK costs about a second of every preview and up (the module's why).
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, components.tenant_storage; print('pulumi_cloudflare' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert found.stdout.strip() == "False"

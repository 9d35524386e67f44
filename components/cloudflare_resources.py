"""The Cloudflare resources and the one invoke the program uses, registered exactly as the
pinned pulumi_cloudflare SDK registers them, without importing that SDK.

Why: `import pulumi_cloudflare` runs its package __init__, which imports all of its ~660
generated modules (6.17.0: `from .access_application import *` and so on, then the
shared `_inputs` and `outputs`): about a second of CPU at the start of every preview, up
and destroy, most of a no-op preview's program start (benchmarks/preview_breakdown.py).
The SDK stays installed and pinned (requirements.txt): the language host reads its
pulumi-plugin.json to know which provider plugin to load, and the tests compare what
these classes send with what the SDK's own classes send (tests/components/
test_cloudflare_resources.py), so a new SDK version that registers differently fails
there first.

What the SDK does, and so what this does (pulumi_cloudflare 6.17.0, r2_bucket.py,
account_token.py and get_account_api_token_permission_groups_list.py, each
`_internal_init` or `*_output` function; _utilities.py get_resource_opts_defaults):
- the type tokens below, the inputs under their wire (camelCase) names, every declared
  output registered as None so the engine fills it;
- `version` set to the SDK's own version on every resource and invoke, which names the
  default provider (`default_6_17_0`) in state: a different version would be another
  provider;
- AccountToken marks `value` an additional secret output.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime

SDK_PACKAGE = "pulumi_cloudflare"
R2_BUCKET_TYPE = "cloudflare:index/r2Bucket:R2Bucket"
ACCOUNT_TOKEN_TYPE = "cloudflare:index/accountToken:AccountToken"  # noqa: S105 (a type)
PERMISSION_GROUPS_LIST_FUNCTION = (
    "cloudflare:index/getAccountApiTokenPermissionGroupsList:getAccountApiTokenPermissionGroupsList"
)


@functools.cache
def sdk_version() -> str:
    """The installed SDK's provider version, from its pulumi-plugin.json: the file the
    language host reads for the plugin to load. Found without running the package."""
    spec = importlib.util.find_spec(SDK_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{SDK_PACKAGE} is not installed (requirements.txt pins it)")
    plugin = Path(next(iter(spec.submodule_search_locations))) / "pulumi-plugin.json"
    return str(json.loads(plugin.read_text(encoding="utf-8"))["version"])


def _resource_options(opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions.merge(pulumi.ResourceOptions(version=sdk_version()), opts)


class R2Bucket(pulumi.CustomResource):
    """cloudflare.R2Bucket: `name` is the bucket's name (an output, as the SDK has it)."""

    name: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        account_id: pulumi.Input[str],
        name: pulumi.Input[str],
        jurisdiction: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "accountId": account_id,
            "jurisdiction": jurisdiction,
            "location": None,
            "name": name,
            "storageClass": None,
            "creationDate": None,
        }
        super().__init__(R2_BUCKET_TYPE, resource_name, props, _resource_options(opts))


class AccountToken(pulumi.CustomResource):
    """cloudflare.AccountToken: its id is the token's id, `value` the secret token."""

    value: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        account_id: pulumi.Input[str],
        name: pulumi.Input[str],
        policies: pulumi.Input[list[Any]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`policies` under their wire names: effect, permissionGroups, resources."""
        props: dict[str, Any] = {
            "accountId": account_id,
            "condition": None,
            "expiresOn": None,
            "name": name,
            "notBefore": None,
            "policies": policies,
            "status": None,
            "issuedOn": None,
            "lastUsedOn": None,
            "modifiedOn": None,
            "value": None,
        }
        secret_value = pulumi.ResourceOptions(additional_secret_outputs=["value"])
        super().__init__(
            ACCOUNT_TOKEN_TYPE,
            resource_name,
            props,
            pulumi.ResourceOptions.merge(_resource_options(opts), secret_value),
        )


@dataclass(frozen=True)
class PermissionGroupEntry:
    """One entry of the permission groups list (the SDK's result has more fields)."""

    id: str
    name: str


def permission_groups_output(
    account_id: pulumi.Input[str],
) -> pulumi.Output[list[PermissionGroupEntry]]:
    """cloudflare.get_account_api_token_permission_groups_list_output(account_id=...)'s
    `results`: every permission group the account's tokens can be given."""
    args = {"accountId": account_id, "maxItems": None, "name": None, "scope": None}
    result = pulumi.runtime.invoke_output(
        PERMISSION_GROUPS_LIST_FUNCTION,
        args,
        opts=pulumi.InvokeOutputOptions(version=sdk_version()),
    )
    return result.apply(
        lambda response: [
            PermissionGroupEntry(id=str(entry.get("id")), name=str(entry.get("name")))
            for entry in (response.get("results") or [])
        ]
    )

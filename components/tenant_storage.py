"""TenantStorage: one tenant's R2 bucket and the API token scoped to it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import r2
from components.cloudflare_resources import AccountToken, R2Bucket, permission_groups_output
from components.settings import R2StorageSettings


def lookup_bucket_write_permission_group(account_id: str) -> pulumi.Output[str]:
    """Look up the id of R2's per-bucket item write permission group, once per stack."""
    return permission_groups_output(account_id).apply(
        lambda results: r2.permission_group_id(results, r2.BUCKET_ITEM_WRITE_PERMISSION)
    )


@dataclass(frozen=True)
class TenantStorageArgs:
    account_id: str
    storage: R2StorageSettings
    bucket_write_permission_group_id: pulumi.Input[str]


class TenantStorage(pulumi.ComponentResource):
    """An R2 bucket plus an account token that can only read and write its objects."""

    bucket_name: pulumi.Output[str]
    jurisdiction: str
    s3_endpoint: str
    s3_prefix: str
    s3_access_key_id: pulumi.Output[str]  # secret
    s3_secret_access_key: pulumi.Output[str]  # secret

    def __init__(
        self, name: str, args: TenantStorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("openclaw-phala:index:TenantStorage", name, None, opts)
        storage = args.storage

        bucket = R2Bucket(
            f"{name}-bucket",
            account_id=args.account_id,
            name=storage.bucket,
            jurisdiction=storage.jurisdiction,
            opts=pulumi.ResourceOptions(
                parent=self,
                # The bucket holds the tenant's only copy of its state: removing the tenant
                # from config (or destroying the stack) must not delete it with the CVM.
                retain_on_delete=True,
                # The provider updates a jurisdiction in place, PATCHing the bucket's name
                # under the new jurisdiction (terraform-provider-cloudflare v5.19.1,
                # r2_bucket/schema.go:93-105 and resource.go:109-153): that is another
                # bucket or none. A new jurisdiction is a new bucket, so replace; the old
                # one is kept (above) and components/data_guards.py asks for an opt-in.
                replace_on_changes=["jurisdiction"],
            ),
        )
        token = AccountToken(
            f"{name}-token",
            account_id=args.account_id,
            name=r2.token_name(storage.bucket),
            policies=[
                {
                    "effect": "allow",
                    "permissionGroups": [{"id": args.bucket_write_permission_group_id}],
                    "resources": bucket.name.apply(
                        lambda bucket_name: r2.bucket_policy_resources(
                            args.account_id, storage.jurisdiction, bucket_name
                        )
                    ),
                }
            ],
            # AccountToken itself marks `value` secret (it is only returned once, at creation).
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.bucket_name = bucket.name
        self.jurisdiction = storage.jurisdiction
        self.s3_endpoint = r2.s3_endpoint(args.account_id, storage.jurisdiction)
        self.s3_prefix = storage.s3_prefix
        # The engine honours additional_secret_outputs, but wrapping here too keeps the
        # credentials secret wherever they flow, and is what the mock runtime can check.
        self.s3_access_key_id = pulumi.Output.secret(token.id)
        self.s3_secret_access_key = pulumi.Output.secret(token.value.apply(r2.s3_secret_access_key))

        self.register_outputs(
            {
                "bucketName": self.bucket_name,
                "s3Endpoint": self.s3_endpoint,
                "s3Prefix": self.s3_prefix,
                "s3AccessKeyId": self.s3_access_key_id,
                "s3SecretAccessKey": self.s3_secret_access_key,
            }
        )

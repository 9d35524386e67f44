"""OpenClawTenant: one tenant's gateway CVM together with its encrypted storage."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import r2, urls
from components.compose import openclaw_compose
from components.config_keys import TENANT_SECRETS_KEY, StorageMode
from components.cvm_env import S3Credentials, tenant_env
from components.data_guards import TENANT_LOST
from components.derived_outputs import tenant_key_outputs
from components.key_change import GuardedKey, checked_key, key_fingerprint
from components.mux_server import MuxEndpoint
from components.openclaw_config import encode_config, tenant_config
from components.phala_cvm import HealthCheck, LocalState, PhalaCvm, PhalaCvmArgs
from components.settings import PhalaSettings, TenantSettings
from components.tenant_storage import TenantStorage, TenantStorageArgs
from driver import protocol

GATEWAY_HEALTH_URL_TEMPLATE = f"https://{{app_id}}-{urls.GATEWAY_PORT}.{{base_domain}}/"


@dataclass(frozen=True)
class OpenClawTenantArgs:
    tenant: TenantSettings
    image: str
    phala: PhalaSettings
    cloudflare_account_id: str | None  # required for s3 tenants (validated in settings)
    bucket_write_permission_group_id: pulumi.Input[str] | None
    mux: MuxEndpoint | None = None
    # The fingerprint of the MASTER_KEY the tenant runs with (None: not deployed yet).
    deployed_key_fingerprint: pulumi.Input[str | None] = None
    repair_generation: int | pulumi.Output[int] = 0  # see components/drift_repair.py
    after: tuple[pulumi.Resource, ...] = ()  # the previous rollout wave (components/rollout.py)


def key_change_loss(storage_mode: StorageMode) -> str:
    lost = "makes its encrypted state in R2 unreadable, " if storage_mode is StorageMode.S3 else ""
    return (
        f"{lost}changes its gateway token (its dashboard link stops working) and its "
        "openclawId (every mux pairing must be redone)"
    )


def _bootstrap_config(gateway_token: str, mux_base_url: str, register_key: str) -> str:
    return encode_config(tenant_config(gateway_token, mux_base_url, register_key))


class OpenClawTenant(pulumi.ComponentResource):
    tenant: TenantSettings
    storage: TenantStorage | None
    cvm: PhalaCvm
    gateway_token: pulumi.Output[str]  # secret
    openclaw_id: pulumi.Output[str]
    key_fingerprint: str  # public: see components/key_change.py
    gateway_url: pulumi.Output[str]
    dashboard_url: pulumi.Output[str]  # secret: carries the gateway token
    ssh_host: pulumi.Output[str]
    inbound_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: OpenClawTenantArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("openclaw-phala:index:OpenClawTenant", name, None, opts)
        tenant = args.tenant
        self.tenant = tenant
        master_key = checked_key(
            pulumi.Output.secret(tenant.master_key.reveal()),
            pulumi.Output.from_input(args.deployed_key_fingerprint),
            GuardedKey(
                key_setting=f"{TENANT_SECRETS_KEY}.{tenant.name}.masterKey",
                owner=f"tenant {tenant.name}",
                opt_in_setting=f"{tenant.config_path}.allowKeyChange",
                loss=key_change_loss(tenant.storage_mode),
            ),
            tenant.allow_key_change,
        )
        self.key_fingerprint = key_fingerprint(tenant.master_key.reveal())
        keys = tenant_key_outputs(tenant.master_key)
        self.gateway_token = keys.gateway_token
        self.openclaw_id = keys.openclaw_id

        self.storage = None
        s3: S3Credentials | None = None
        if tenant.storage_mode is StorageMode.S3:
            assert tenant.r2 is not None and args.cloudflare_account_id is not None
            assert args.bucket_write_permission_group_id is not None
            self.storage = TenantStorage(
                f"{name}-storage",
                TenantStorageArgs(
                    account_id=args.cloudflare_account_id,
                    storage=tenant.r2,
                    bucket_write_permission_group_id=args.bucket_write_permission_group_id,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            s3 = S3Credentials(
                bucket=self.storage.bucket_name,
                prefix=self.storage.s3_prefix,
                endpoint=self.storage.s3_endpoint,
                access_key_id=self.storage.s3_access_key_id,
                secret_access_key=self.storage.s3_secret_access_key,
            )

        openclaw_config: pulumi.Output[str] | None = None
        if args.mux is not None:
            bootstrap: pulumi.Input[str] = pulumi.Output.all(
                keys.gateway_token, args.mux.base_url, args.mux.register_key
            ).apply(lambda a: _bootstrap_config(a[0], a[1], a[2]))
            openclaw_config = pulumi.Output.secret(bootstrap)

        self.cvm = PhalaCvm(
            name,
            PhalaCvmArgs(
                cvm_name=tenant.name,
                role="openclaw",
                compose=openclaw_compose(args.image),
                env=tenant_env(
                    master_key=master_key,
                    redpill_api_key=pulumi.Output.secret(tenant.redpill_api_key.reveal()),
                    s3=s3,
                    openclaw_config_b64=openclaw_config,
                ),
                phala=args.phala,
                instance_type=tenant.instance_type,
                existing_cvm_id=tenant.existing_cvm_id,
                local_state=(
                    LocalState(
                        "allowDataLoss",
                        tenant.allow_data_loss,
                        lost=TENANT_LOST,
                        how=f"set allowDataLoss: true on tenant {tenant.name}",
                    )
                    if tenant.storage_mode is StorageMode.LOCAL
                    else None
                ),
                repair_generation=args.repair_generation,
                after=args.after,
                health_check=HealthCheck(GATEWAY_HEALTH_URL_TEMPLATE, protocol.HEALTH_EXPECT_HTTP),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.gateway_url = self.cvm.address(urls.gateway_url)
        self.ssh_host = self.cvm.address(urls.ssh_host)
        self.inbound_url = self.cvm.address(urls.inbound_url)
        self.dashboard_url = pulumi.Output.secret(
            pulumi.Output.all(
                self.cvm.app_id, self.cvm.gateway_base_domain, keys.gateway_token
            ).apply(lambda a: urls.dashboard_url(a[0], a[1], a[2]))
        )

        self.register_outputs(
            {
                "openclawId": self.openclaw_id,
                "cvmId": self.cvm.cvm_id,
                "gatewayUrl": self.gateway_url,
                "sshHost": self.ssh_host,
            }
        )


def s3_output_fields(tenant: OpenClawTenant) -> dict[str, pulumi.Input[str] | None]:
    """The non-secret storage fields of the output contract (nulls in local mode)."""
    storage = tenant.storage
    if storage is None:
        return dict.fromkeys(
            ("bucket", "jurisdiction", "s3Endpoint", "s3Region", "s3Provider", "s3Prefix")
        )
    return {
        "bucket": storage.bucket_name,
        "jurisdiction": storage.jurisdiction,
        "s3Endpoint": storage.s3_endpoint,
        "s3Region": r2.S3_REGION,
        "s3Provider": r2.S3_PROVIDER,
        "s3Prefix": storage.s3_prefix,
    }

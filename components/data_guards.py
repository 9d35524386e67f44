"""Refusing, at preview, a change that would lose a running tenant's or mux's data.

The program compares the config with what the last deployment exported (its own stack
outputs, components/deployed_stack.py) and fails the preview, naming the setting that
allows the change, when:
- a CVM that keeps its state on its own volumes (a local-storage tenant, the mux) would
  be replaced (a setting in REPLACEMENT_TRIGGER_NAMES changed) or deleted (its tenant
  or the mux left the config), unless `tenants[i].allowDataLoss` / `muxAllowDataLoss`
  is set (for a removal: was deployed set, since the tenant is no longer configured);
- a running s3 tenant would get a new bucket (its `bucket`, `jurisdiction` or
  `cloudflareAccountId` changed): its CVM would restart on a new, empty bucket and its
  state would stay in the old one, unless `tenants[i].allowNewBucket` is set;
- a tenant's `storage` changes: either way its CVM restarts without its state, unless
  `tenants[i].allowDataLoss` is set (going to s3: deployed while still local).

`pulumi destroy` does not run the program; there the guard Command of each such CVM
refuses instead (components/phala_cvm.py). A first deployment, a record from before
these fields were exported, and an unchanged config are never refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from components import r2
from components.config_keys import TENANTS_KEY, StorageMode
from components.deployed_stack import DATA_LOSS_ALLOWED_FIELD, REPLACEMENT_SETTINGS_FIELD
from components.phala_cvm import REPLACEMENT_TRIGGER_NAMES, trigger_values
from components.settings import MuxSettings, Settings, TenantSettings

PROJECT_PREFIX: Final = "openclaw-phala:"
# Where each replacement setting is configured (instanceType per CVM, the rest per stack).
_STACK_SETTINGS: Final = {
    "diskSizeGb": "phalaDiskSizeGb",
    "region": "phalaRegion",
    "kms": "phalaKms",
    "osImage": "phalaOsImage",
    "devOs": "phalaDevOs",
}
MOVE_HOW_TO: Final = "README: Moving a tenant to a new bucket"


@dataclass(frozen=True)
class DeployedCvm:
    """What the last deployment exported about one CVM."""

    storage_mode: str | None
    replacement_settings: dict[str, Any] | None  # None: exported before the field existed
    data_loss_allowed: bool
    bucket: str | None
    s3_endpoint: str | None


def _deployed_cvm(record: Any) -> DeployedCvm | None:
    if not isinstance(record, dict):
        return None
    settings = record.get(REPLACEMENT_SETTINGS_FIELD)
    bucket, endpoint = record.get("bucket"), record.get("s3Endpoint")
    return DeployedCvm(
        storage_mode=record.get("storageMode")
        if isinstance(record.get("storageMode"), str)
        else None,
        replacement_settings=settings if isinstance(settings, dict) else None,
        data_loss_allowed=record.get(DATA_LOSS_ALLOWED_FIELD) is True,
        bucket=bucket if isinstance(bucket, str) else None,
        s3_endpoint=endpoint if isinstance(endpoint, str) else None,
    )


def _changed_settings(deployed: DeployedCvm, configured: list[Any]) -> list[tuple[str, Any, Any]]:
    if deployed.replacement_settings is None:
        return []
    now = dict(zip(REPLACEMENT_TRIGGER_NAMES, configured, strict=True))
    return [
        (name, deployed.replacement_settings[name], now[name])
        for name in REPLACEMENT_TRIGGER_NAMES
        if name in deployed.replacement_settings
        and deployed.replacement_settings[name] != now[name]
    ]


def _setting_key(name: str, instance_type_key: str) -> str:
    return instance_type_key if name == "instanceType" else _STACK_SETTINGS.get(name, name)


def _replacement_refusal(
    owner: str,
    changes: list[tuple[str, Any, Any]],
    instance_type_key: str,
    lost: str,
    opt_in: str,
) -> str:
    keys = ", ".join(dict.fromkeys(_setting_key(name, instance_type_key) for name, _, _ in changes))
    what = "; ".join(f"{name} {old!r} -> {new!r}" for name, old, new in changes)
    return (
        f"{PROJECT_PREFIX}{keys} ({owner}): {what} replaces its CVM, and {lost} would be "
        f"lost. If that is intended, set {opt_in}: true for this `pulumi up`, then remove it"
    )


TENANT_LOST: Final = "the state on its volumes (storage local: nothing is in R2)"
MUX_LOST: Final = "its pairing DB and WhatsApp auth (on its volumes)"


def _tenant_refusals(
    tenant: TenantSettings, deployed: DeployedCvm, settings: Settings
) -> list[str]:
    owner = f"tenant {tenant.name}"
    refusals = []
    storage_change = _storage_mode_refusal(tenant, deployed)
    if storage_change is not None:
        refusals.append(storage_change)
    if (
        deployed.storage_mode == StorageMode.LOCAL.value
        and tenant.storage_mode is StorageMode.LOCAL
    ):
        changes = _changed_settings(
            deployed, trigger_values(tenant.name, tenant.instance_type, settings.phala)
        )
        if changes and not tenant.allow_data_loss:
            refusals.append(
                _replacement_refusal(
                    owner,
                    changes,
                    f"{tenant.config_path}.instanceType",
                    TENANT_LOST,
                    f"{tenant.config_path}.allowDataLoss",
                )
            )
    if (
        deployed.storage_mode == StorageMode.S3.value
        and tenant.r2 is not None
        and deployed.bucket is not None
        and deployed.s3_endpoint is not None
        and not tenant.allow_new_bucket
    ):
        refusal = _bucket_refusal(tenant, deployed, settings.cloudflare.account_id or "")
        if refusal is not None:
            refusals.append(refusal)
    return refusals


def _storage_mode_refusal(tenant: TenantSettings, deployed: DeployedCvm) -> str | None:
    """A new storage mode restarts the CVM without its state, wherever that state was."""
    key = f"{PROJECT_PREFIX}{tenant.config_path}.storage (tenant {tenant.name})"
    before, now = deployed.storage_mode, tenant.storage_mode.value
    if before == StorageMode.LOCAL.value and now == StorageMode.S3.value:
        if deployed.data_loss_allowed:
            return None
        return (
            f"{key}: local -> s3 restarts its CVM on a new, empty bucket, and {TENANT_LOST} "
            f"would be lost. If that is intended, set {tenant.config_path}.allowDataLoss: true "
            "with storage local for one `pulumi up`, then change the storage"
        )
    if before == StorageMode.S3.value and now == StorageMode.LOCAL.value:
        if tenant.allow_data_loss:
            return None
        kept = f" in R2 bucket {deployed.bucket}" if deployed.bucket else " in R2"
        return (
            f"{key}: s3 -> local restarts its CVM on an empty volume, without its state, which "
            f"stays{kept} (kept, not deleted). If that is intended, set "
            f"{tenant.config_path}.allowDataLoss: true for this `pulumi up`, then remove it"
        )
    return None


def _bucket_refusal(tenant: TenantSettings, deployed: DeployedCvm, account_id: str) -> str | None:
    assert tenant.r2 is not None and deployed.bucket is not None
    assert deployed.s3_endpoint is not None
    endpoint = r2.s3_endpoint(account_id, tenant.r2.jurisdiction)
    if deployed.bucket == tenant.r2.bucket and deployed.s3_endpoint == endpoint:
        return None
    old = r2.endpoint_location(deployed.s3_endpoint)
    keys = []
    if deployed.bucket != tenant.r2.bucket:
        keys.append(f"{tenant.config_path}.bucket")
    if old is None or old[0] != account_id:
        keys.append("cloudflareAccountId")
    if old is None or old[1] != tenant.r2.jurisdiction:
        keys.append(f"{tenant.config_path}.jurisdiction")
    where = f"jurisdiction {old[1]}" if old is not None else deployed.s3_endpoint
    return (
        f"{PROJECT_PREFIX}{', '.join(keys)} (tenant {tenant.name}): its state is in R2 bucket "
        f"{deployed.bucket} ({where}); this change gives it a new, empty bucket "
        f"{tenant.r2.bucket} (jurisdiction {tenant.r2.jurisdiction}), so its CVM would restart "
        f"without its state, which stays behind in {deployed.bucket} (kept, not deleted). To "
        f"move the state: pull a copy with .venv/bin/python -m ops backup pull {tenant.name} "
        f"<dir>, then set {tenant.config_path}.allowNewBucket: true for this `pulumi up` "
        f"(remove it after), then restore the copy with .venv/bin/python -m ops backup "
        f"restore {tenant.name} <dir> ({MOVE_HOW_TO})"
    )


def _removed_tenant_refusal(name: str, deployed: DeployedCvm) -> str | None:
    if deployed.storage_mode != StorageMode.LOCAL.value or deployed.data_loss_allowed:
        return None
    return (
        f"{PROJECT_PREFIX}{TENANTS_KEY} (tenant {name}): it is no longer configured, and deleting "
        f"its CVM loses {TENANT_LOST}. If that is intended, keep it in {TENANTS_KEY} with "
        "allowDataLoss: true for one `pulumi up`, then remove it"
    )


def _mux_refusals(mux: MuxSettings | None, record: Any, settings: Settings) -> list[str]:
    deployed = _deployed_cvm(record)
    deployed_name = record.get("name") if isinstance(record, dict) else None
    if deployed is None or not isinstance(deployed_name, str):
        return []
    if mux is None or mux.name != deployed_name:
        if deployed.data_loss_allowed:
            return []
        change = "is no longer configured" if mux is None else f"is renamed to {mux.name}"
        return [
            f"{PROJECT_PREFIX}muxName (mux {deployed_name}): the mux {change}, and deleting its "
            f"CVM loses {MUX_LOST}. If that is intended, set muxAllowDataLoss: true for one "
            "`pulumi up` with the mux still configured, then make the change"
        ]
    changes = _changed_settings(
        deployed, trigger_values(mux.name, mux.instance_type, settings.phala)
    )
    if changes and not mux.allow_data_loss:
        return [
            _replacement_refusal(
                f"mux {mux.name}", changes, "muxInstanceType", MUX_LOST, "muxAllowDataLoss"
            )
        ]
    return []


def deployment_refusals(settings: Settings, outputs: Mapping[str, Any]) -> list[str]:
    """Every refused change, one message each, against the last deployment's outputs."""
    tenants = outputs.get("tenants")
    deployed_tenants = tenants if isinstance(tenants, dict) else {}
    configured = {tenant.name: tenant for tenant in settings.tenants}
    refusals: list[str] = []
    for name, record in sorted(deployed_tenants.items()):
        deployed = _deployed_cvm(record)
        if deployed is None:
            continue
        tenant = configured.get(name)
        if tenant is None:
            refusal = _removed_tenant_refusal(name, deployed)
            refusals += [refusal] if refusal is not None else []
        else:
            refusals += _tenant_refusals(tenant, deployed, settings)
    refusals += _mux_refusals(settings.mux, outputs.get("mux"), settings)
    return refusals

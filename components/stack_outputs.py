"""The stack outputs: the contract other stacks and the operator CLI rely on.

Secret and plain values live in separate top-level outputs because a
StackReference marks a whole output secret if any part of it is: keeping ids and
URLs in their own outputs keeps them readable in every consuming stack.

    contractVersion  1
    tenants          {name: {name, storageMode, bucket, jurisdiction, s3Endpoint, s3Region,
                             s3Provider, s3Prefix, openclawId, keyFingerprint, cvmId, appId,
                             gatewayBaseDomain, composeHash, repairGeneration,
                             replacementSettings, dataLossAllowed, gatewayUrl, sshHost,
                             inboundUrl, phalaDashboardUrl}}
    tenantSecrets    {name: {gatewayToken, dashboardUrl, s3AccessKeyId, s3SecretAccessKey}}  secret
    mux              {name, cvmId, appId, gatewayBaseDomain, composeHash, repairGeneration,
                      replacementSettings, dataLossAllowed, baseUrl, healthUrl,
                      phalaDashboardUrl, registerKeyFingerprint, channels, jwtKeyId} | null
    muxSecrets       {registerKey, adminToken} | null                                      secret
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import pulumi

from components import urls
from components.deployed_stack import (
    DATA_LOSS_ALLOWED_FIELD,
    JWT_KEY_ID_FIELD,
    KEY_FINGERPRINT_FIELD,
    REGISTER_KEY_FINGERPRINT_FIELD,
    REPLACEMENT_SETTINGS_FIELD,
)
from components.drift_repair import REPAIR_GENERATION_FIELD
from components.mux_server import MuxServer
from components.openclaw_tenant import OpenClawTenant, s3_output_fields

CONTRACT_VERSION: Final = 1
MUX_CHANNELS_FIELD: Final = "channels"


def tenant_outputs(tenant: OpenClawTenant) -> dict[str, Any]:
    cvm = tenant.cvm
    return {
        "name": tenant.tenant.name,
        "storageMode": tenant.tenant.storage_mode.value,
        **s3_output_fields(tenant),
        "openclawId": tenant.openclaw_id,
        KEY_FINGERPRINT_FIELD: tenant.key_fingerprint,
        "cvmId": cvm.cvm_id,
        "appId": cvm.app_id,
        "gatewayBaseDomain": cvm.gateway_base_domain,
        "composeHash": cvm.compose_hash,
        REPAIR_GENERATION_FIELD: cvm.repair_generation,
        # Added within contract v1: what the next run compares to refuse losing data.
        REPLACEMENT_SETTINGS_FIELD: cvm.replaced_when,
        DATA_LOSS_ALLOWED_FIELD: cvm.data_loss_allowed,
        "gatewayUrl": tenant.gateway_url,
        "sshHost": tenant.ssh_host,
        "inboundUrl": tenant.inbound_url,
        "phalaDashboardUrl": cvm.cvm_id.apply(urls.phala_dashboard_url),
    }


def tenant_secret_outputs(tenant: OpenClawTenant) -> dict[str, Any]:
    storage = tenant.storage
    return {
        "gatewayToken": tenant.gateway_token,
        "dashboardUrl": tenant.dashboard_url,
        "s3AccessKeyId": storage.s3_access_key_id if storage else None,
        "s3SecretAccessKey": storage.s3_secret_access_key if storage else None,
    }


def mux_outputs(mux: MuxServer, name: str) -> dict[str, Any]:
    cvm = mux.cvm
    return {
        "name": name,
        "cvmId": cvm.cvm_id,
        "appId": cvm.app_id,
        "gatewayBaseDomain": cvm.gateway_base_domain,
        "composeHash": cvm.compose_hash,
        REPAIR_GENERATION_FIELD: cvm.repair_generation,
        REPLACEMENT_SETTINGS_FIELD: cvm.replaced_when,
        DATA_LOSS_ALLOWED_FIELD: cvm.data_loss_allowed,
        "baseUrl": mux.base_url,
        "healthUrl": mux.health_url,
        "phalaDashboardUrl": cvm.cvm_id.apply(urls.phala_dashboard_url),
        REGISTER_KEY_FINGERPRINT_FIELD: mux.register_key_fingerprint,
        # Added within contract v1 (an extra field breaks no reader): `ops pair`
        # refuses a channel the mux does not serve instead of minting a token
        # nobody can redeem.
        MUX_CHANNELS_FIELD: list(mux.channels),
        # Added within contract v1 too: the key id the mux's JWKS serves (null when it
        # makes its own key at each boot), which the JWT key guard compares.
        JWT_KEY_ID_FIELD: mux.jwt_key_id,
    }


def export_stack_outputs(
    tenants: Sequence[OpenClawTenant], mux: MuxServer | None, mux_name: str | None
) -> None:
    pulumi.export("contractVersion", CONTRACT_VERSION)
    pulumi.export("tenants", {t.tenant.name: tenant_outputs(t) for t in tenants})
    pulumi.export(
        "tenantSecrets",
        pulumi.Output.secret({t.tenant.name: tenant_secret_outputs(t) for t in tenants}),
    )
    if mux is None or mux_name is None:
        pulumi.export("mux", None)
        pulumi.export("muxSecrets", None)
        return
    pulumi.export("mux", mux_outputs(mux, mux_name))
    pulumi.export(
        "muxSecrets",
        pulumi.Output.secret({"registerKey": mux.register_key, "adminToken": mux.admin_token}),
    )

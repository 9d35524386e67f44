"""openclaw-phala: OpenClaw gateways in Phala Cloud CVMs, with their state
encrypted into Cloudflare R2 and a shared mux-server fronting the chat bots."""

from components.mux_server import MuxServer, MuxServerArgs
from components.openclaw_tenant import OpenClawTenant, OpenClawTenantArgs
from components.stack_config import load_settings
from components.stack_outputs import export_stack_outputs
from components.tenant_storage import lookup_bucket_write_permission_group

settings = load_settings()

# Storage: every s3 tenant's token is scoped by one shared permission-group lookup.
bucket_write_permission = (
    lookup_bucket_write_permission_group(settings.cloudflare.account_id)
    if settings.s3_tenants and settings.cloudflare.account_id
    else None
)

# The shared mux, deployed before the tenants that register with it.
mux = (
    MuxServer(
        settings.mux.name,
        MuxServerArgs(settings=settings.mux, image=settings.images.mux, phala=settings.phala),
    )
    if settings.mux and settings.images.mux
    else None
)

tenants = [
    OpenClawTenant(
        tenant.name,
        OpenClawTenantArgs(
            tenant=tenant,
            image=settings.images.openclaw or "",
            phala=settings.phala,
            cloudflare_account_id=settings.cloudflare.account_id,
            bucket_write_permission_group_id=bucket_write_permission,
            mux=mux.endpoint if mux else None,
        ),
    )
    for tenant in settings.tenants
]

export_stack_outputs(tenants, mux, settings.mux.name if settings.mux else None)

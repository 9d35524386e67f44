"""openclaw-phala: OpenClaw gateways in Phala Cloud CVMs, with their state
encrypted into Cloudflare R2 and a shared mux-server fronting the chat bots."""

import gc
import os

import pulumi

from components.data_guards import deployment_refusals
from components.deployed_stack import DeployedStack
from components.drift_repair import RepairPlan
from components.mux_reference import mux_endpoint_from_stack
from components.mux_server import MuxEndpoint, MuxServer, MuxServerArgs
from components.openclaw_tenant import OpenClawTenant, OpenClawTenantArgs
from components.rollout import waves
from components.sdk_debug_log import quiet_sdk_debug_logs
from components.stack_config import load_settings
from components.stack_outputs import export_stack_outputs
from components.tenant_removal import refusal_message, tenant_removal, unused_opt_in_warning
from components.tenant_storage import lookup_bucket_write_permission_group

# The program builds one graph of resources and Outputs that lives until it exits. The
# cyclic collector rescans all of it each time it grows by a quarter: at 500 tenants that
# was about half of the evaluation (benchmarks/program_scaling.py), and found almost no
# garbage. Reference counting still frees everything acyclic; the process is the
# program's own (the language host's executor), so nothing else runs without it.
gc.disable()
# What the imports made (the SDKs' modules and types) is never garbage: frozen, the
# collections the interpreter still runs as it exits skip it.
gc.freeze()
# The SDK sends the engine about thirty debug messages per tenant, each a synchronous
# call, which the engine shows only under `pulumi up --debug`: dropped unless
# OPENCLAW_SDK_DEBUG_LOGS=1 (components/sdk_debug_log.py).
quiet_sdk_debug_logs(os.environ)

settings = load_settings()

# What the last deployment runs with: a running tenant's or mux's key may not change
# without an opt-in (components/key_change.py).
deployed = DeployedStack()
# Replacing or deleting a CVM that keeps its own state, moving a running tenant to a new
# bucket, or removing many running tenants at once loses data: refused here, all in one
# message, each naming its opt-in (components/data_guards.py, tenant_removal.py).
refusals = deployment_refusals(settings, deployed.outputs)
removal = tenant_removal(
    deployed.tenant_names(), [t.name for t in settings.tenants], settings.allow_tenant_removal
)
if removal.refused:
    refusals.append(refusal_message(removal))
if refusals:
    raise pulumi.RunError("\n".join(refusals))
if (unused := unused_opt_in_warning(removal)) is not None:
    pulumi.log.warn(unused)
# pulumi_command cannot refresh: CVMs changed or deleted outside Pulumi are found by
# reading them, and redeployed by this run (components/drift_repair.py).
repairs = RepairPlan(deployed.tenants, deployed.mux)

# Storage: every s3 tenant's token is scoped by one shared permission-group lookup.
bucket_write_permission = (
    lookup_bucket_write_permission_group(settings.cloudflare.account_id)
    if settings.s3_tenants and settings.cloudflare.account_id
    else None
)

# The shared mux: deployed here, before the tenants that register with it, or
# taken from another stack's outputs.
mux = (
    MuxServer(
        settings.mux.name,
        MuxServerArgs(
            settings=settings.mux,
            image=settings.images.mux or "",
            phala=settings.phala,
            deployed_register_key_fingerprint=deployed.mux_register_key_fingerprint(),
            deployed_jwt_key_id=deployed.mux_jwt_key_id(),
            repair_generation=repairs.generation(settings.mux.name),
        ),
    )
    if settings.mux
    else None
)
mux_endpoint: MuxEndpoint | None
if mux is not None:
    mux_endpoint = mux.endpoint
elif settings.mux_stack is not None:
    mux_endpoint = mux_endpoint_from_stack(settings.mux_stack)
else:
    mux_endpoint = None

# Tenants, wave by wave: each wave deploys once the one before is deployed and healthy.
tenants: list[OpenClawTenant] = []
previous_wave: tuple[pulumi.Resource, ...] = ()
for wave in waves(settings.tenants):
    deployed_wave = [
        OpenClawTenant(
            tenant.name,
            OpenClawTenantArgs(
                tenant=tenant,
                image=settings.images.openclaw or "",
                phala=settings.phala,
                cloudflare_account_id=settings.cloudflare.account_id,
                bucket_write_permission_group_id=bucket_write_permission,
                mux=mux_endpoint,
                deployed_key_fingerprint=deployed.tenant_key_fingerprint(tenant.name),
                repair_generation=repairs.generation(tenant.name),
                after=previous_wave,
            ),
        )
        for tenant in wave
    ]
    tenants += deployed_wave
    previous_wave = tuple(tenant.cvm.command for tenant in deployed_wave)

export_stack_outputs(tenants, mux, settings.mux.name if settings.mux else None)

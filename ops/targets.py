"""Which CVM a day-2 command means: a tenant by name, or the shared mux-server as ``mux``.

Everything comes from the stack outputs, so the operator never exports
``CVM_SSH_HOST`` or looks up a CVM id by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from ops.stack_outputs import StackOutputs, StackOutputsError

MUX_TARGET: Final = "mux"
# The container sshd publishes on the CVM (compose/*.yml: "1022:22"); the
# gateway exposes it as <app_id>-1022.<base domain>, like every published port.
SSH_PUBLISHED_PORT: Final = 1022
# container_name in compose/openclaw.yml and compose/mux.yml: `phala logs` picks
# the container by this name.
OPENCLAW_CONTAINER: Final = "openclaw"
MUX_CONTAINER: Final = "mux-server"


@dataclass(frozen=True)
class CvmTarget:
    """One CVM as the day-2 commands need it; nothing here is secret."""

    label: str  # for messages: "tenant 'alice'" or "mux"
    role: Literal["openclaw", "mux"]
    cvm_id: str
    ssh_host: str
    container: str


def resolve_target(outputs: StackOutputs, name: str) -> CvmTarget:
    """The tenant called `name`, or the mux CVM for ``mux``; one-line error otherwise."""
    is_tenant = name in outputs.tenants
    if name == MUX_TARGET and outputs.mux is not None:
        if is_tenant:
            raise StackOutputsError(
                f"{name!r} names both a tenant and the mux CVM in the stack outputs; "
                "rename the tenant"
            )
        mux = outputs.mux
        return CvmTarget(
            label="mux",
            role="mux",
            cvm_id=mux.cvm_id,
            # The outputs carry no mux sshHost; it follows the same gateway rule
            # the program uses for the tenants' sshHost.
            ssh_host=f"{mux.app_id}-{SSH_PUBLISHED_PORT}.{mux.gateway_base_domain}",
            container=MUX_CONTAINER,
        )
    if name == MUX_TARGET and not is_tenant:
        raise StackOutputsError(
            "stack outputs 'mux' is null: this stack deploys no mux-server CVM "
            f"(known tenants: {', '.join(sorted(outputs.tenants)) or '(none)'})"
        )
    tenant = outputs.tenant(name)  # names the known tenants when `name` is unknown
    return CvmTarget(
        label=f"tenant {tenant.name!r}",
        role="openclaw",
        cvm_id=tenant.cvm_id,
        ssh_host=tenant.ssh_host,
        container=OPENCLAW_CONTAINER,
    )

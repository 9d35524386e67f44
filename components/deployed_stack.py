"""What this stack's last deployment exported, read from the engine's backend.

The guards in components/key_change.py compare each key with the fingerprint exported
last time, and components/drift_repair.py reads the CVMs it recorded. A stack that was
never deployed has no outputs: nothing is compared.

The read is the engine's own `pulumi:pulumi:readStackOutputs` function, not a
StackReference resource: reading the stack that is being updated can meet its checkpoint
while the engine rewrites it (the file backend answers "failed to load checkpoint: EOF"),
and a failed invoke can be retried where a failed resource read aborts the whole run.
"""

from __future__ import annotations

import time
from typing import Any

import pulumi

READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"
# What the file backend calls every organization; also the answer where none is known.
DEFAULT_ORGANIZATION = "organization"
KEY_FINGERPRINT_FIELD = "keyFingerprint"
REGISTER_KEY_FINGERPRINT_FIELD = "registerKeyFingerprint"
# The key id the mux's JWKS serves: public, and its fingerprint for the key guard.
JWT_KEY_ID_FIELD = "jwtKeyId"
REPLACEMENT_SETTINGS_FIELD = "replacementSettings"
DATA_LOSS_ALLOWED_FIELD = "dataLossAllowed"
READ_ATTEMPTS = 10
READ_RETRY_SECONDS = 0.3


def _field(record: Any, name: str) -> str | None:
    value = record.get(name) if isinstance(record, dict) else None
    return value if isinstance(value, str) else None


def read_own_outputs(stack_name: str) -> dict[str, Any]:
    """The stack's last outputs; fails the run in one line if they cannot be read."""
    for attempt in range(READ_ATTEMPTS):
        try:
            result = pulumi.runtime.invoke(READ_STACK_OUTPUTS, {"name": stack_name})
        except Exception as error:
            if attempt + 1 == READ_ATTEMPTS:
                raise pulumi.RunError(
                    f"cannot read this stack's last outputs ({stack_name}), which the key "
                    f"guards and drift repair need: {error}"
                ) from None
            time.sleep(READ_RETRY_SECONDS)
            continue
        outputs = (result.value or {}).get("outputs") if result is not None else None
        return outputs if isinstance(outputs, dict) else {}
    return {}


class DeployedStack:
    def __init__(self) -> None:
        organization = pulumi.get_organization() or DEFAULT_ORGANIZATION
        name = f"{organization}/{pulumi.get_project()}/{pulumi.get_stack()}"
        self._outputs = read_own_outputs(name)

    @property
    def outputs(self) -> dict[str, Any]:
        """Every output as last deployed (secret values plain: keep them in memory)."""
        return self._outputs

    @property
    def tenants(self) -> pulumi.Output[Any]:
        return pulumi.Output.from_input(self._outputs.get("tenants"))

    @property
    def mux(self) -> pulumi.Output[Any]:
        return pulumi.Output.from_input(self._outputs.get("mux"))

    def tenant_names(self) -> list[str]:
        """The tenants the last deployment runs (its `tenants` output's keys)."""
        tenants = self._outputs.get("tenants")
        return (
            sorted(name for name in tenants if isinstance(name, str))
            if isinstance(tenants, dict)
            else []
        )

    def tenant_key_fingerprint(self, tenant: str) -> str | None:
        tenants = self._outputs.get("tenants")
        record = tenants.get(tenant) if isinstance(tenants, dict) else None
        return _field(record, KEY_FINGERPRINT_FIELD)

    def mux_register_key_fingerprint(self) -> str | None:
        return _field(self._outputs.get("mux"), REGISTER_KEY_FINGERPRINT_FIELD)

    def mux_jwt_key_id(self) -> str | None:
        """None also for a mux deployed before the key was sent (it had none to keep)."""
        return _field(self._outputs.get("mux"), JWT_KEY_ID_FIELD)

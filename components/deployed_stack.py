"""What this stack's last deployment exported, read through a StackReference to itself.

The guards in components/key_change.py compare each key with the fingerprint exported
last time. A stack that was never deployed has no outputs: nothing is compared.
"""

from __future__ import annotations

from typing import Any

import pulumi

REFERENCE_NAME = "deployed-stack"
# What the file backend calls every organization; also the answer where none is known.
DEFAULT_ORGANIZATION = "organization"
KEY_FINGERPRINT_FIELD = "keyFingerprint"
REGISTER_KEY_FINGERPRINT_FIELD = "registerKeyFingerprint"


def _field(record: Any, name: str) -> str | None:
    value = record.get(name) if isinstance(record, dict) else None
    return value if isinstance(value, str) else None


class DeployedStack:
    def __init__(self) -> None:
        organization = pulumi.get_organization() or DEFAULT_ORGANIZATION
        name = f"{organization}/{pulumi.get_project()}/{pulumi.get_stack()}"
        self._reference = pulumi.StackReference(REFERENCE_NAME, stack_name=name)

    def tenant_key_fingerprint(self, tenant: str) -> pulumi.Output[str | None]:
        return self._reference.get_output("tenants").apply(
            lambda tenants: _field(
                tenants.get(tenant) if isinstance(tenants, dict) else None, KEY_FINGERPRINT_FIELD
            )
        )

    @property
    def tenants(self) -> pulumi.Output[Any]:
        return self._reference.get_output("tenants")

    @property
    def mux(self) -> pulumi.Output[Any]:
        return self._reference.get_output("mux")

    def mux_register_key_fingerprint(self) -> pulumi.Output[str | None]:
        return self._reference.get_output("mux").apply(
            lambda mux: _field(mux, REGISTER_KEY_FINGERPRINT_FIELD)
        )

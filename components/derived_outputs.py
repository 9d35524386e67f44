"""Pulumi Output wrappers around the MASTER_KEY derivations.

Every value derived from a master key is a secret Output, except the tenant's
openclawId: it is the SHA-256 of a public key, and downstream stacks and the
operator CLI need to read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import derivation
from components.secret_value import SecretValue


@dataclass(frozen=True)
class TenantKeyOutputs:
    gateway_token: pulumi.Output[str]  # secret
    rclone_crypt_password: pulumi.Output[str]  # secret
    rclone_crypt_salt: pulumi.Output[str]  # secret
    openclaw_id: pulumi.Output[str]  # public: a hash of the device's public key


def tenant_key_outputs(master_key: pulumi.Input[str] | SecretValue) -> TenantKeyOutputs:
    if isinstance(master_key, SecretValue):
        # Known at preview: derive once and wrap each value, rather than chaining
        # applies (hundreds of tenants make that chain the costly part).
        known = derivation.derive_tenant_keys(master_key.reveal())
        return TenantKeyOutputs(
            gateway_token=pulumi.Output.secret(known.gateway_token),
            rclone_crypt_password=pulumi.Output.secret(known.rclone_crypt_password),
            rclone_crypt_salt=pulumi.Output.secret(known.rclone_crypt_salt),
            openclaw_id=pulumi.Output.from_input(known.openclaw_id),
        )
    keys = pulumi.Output.secret(master_key).apply(derivation.derive_tenant_keys)
    return TenantKeyOutputs(
        gateway_token=pulumi.Output.secret(keys.apply(lambda k: k.gateway_token)),
        rclone_crypt_password=pulumi.Output.secret(keys.apply(lambda k: k.rclone_crypt_password)),
        rclone_crypt_salt=pulumi.Output.secret(keys.apply(lambda k: k.rclone_crypt_salt)),
        openclaw_id=pulumi.Output.unsecret(keys.apply(lambda k: k.openclaw_id)),
    )


@dataclass(frozen=True)
class MuxKeyOutputs:
    register_key: pulumi.Output[str]  # secret
    admin_token: pulumi.Output[str]  # secret
    jwt_private_key_pem: pulumi.Output[str]  # secret


def mux_key_outputs(mux_master_key: pulumi.Input[str]) -> MuxKeyOutputs:
    keys = pulumi.Output.secret(mux_master_key).apply(derivation.derive_mux_keys)
    return MuxKeyOutputs(
        register_key=pulumi.Output.secret(keys.apply(lambda k: k.register_key)),
        admin_token=pulumi.Output.secret(keys.apply(lambda k: k.admin_token)),
        jwt_private_key_pem=pulumi.Output.secret(keys.apply(lambda k: k.jwt_private_key_pem)),
    )

"""Refusing a new MASTER_KEY (or mux register key) for what is already running.

A running tenant's MASTER_KEY encrypts its R2 state and is the root of its gateway token
and device identity (openclawId); the mux register key is held by every tenant that
joined the mux. A changed key deploys as a quiet in-place update, so the program compares
a fingerprint of each key with the one the last deployment exported, and fails the
preview, naming what would be lost, unless the operator opted in for that tenant or mux.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.derivation import hkdf_sha256

FINGERPRINT_LABEL = "openclaw-phala key-change fingerprint v1"
FINGERPRINT_BYTES = 16


def key_fingerprint(key: str) -> str:
    """A public stand-in for a secret key, equal exactly when the key is.

    It reveals nothing about the key: it is HKDF-SHA256 output, a pseudorandom function
    of the key, under a label that nothing else uses, so it is unrelated to every value
    the CVM image derives (those use their own labels), and the only way back from it is
    to guess the key itself, which settings require to be at least 32 characters. It is
    kept to 128 bits: enough to tell keys apart, and no more of the output than needed.
    """
    return hkdf_sha256(key, FINGERPRINT_LABEL, FINGERPRINT_BYTES).hex()


@dataclass(frozen=True)
class GuardedKey:
    key_setting: str  # where the key is configured, e.g. "tenantSecrets.alice-agent.masterKey"
    owner: str  # e.g. "tenant alice-agent"
    opt_in_setting: str  # e.g. "tenants[0].allowKeyChange"
    loss: str  # what a new key costs, as a sentence fragment


def refusal(guarded: GuardedKey, deployed: str | None, current: str, allowed: bool) -> str | None:
    """The error for a changed key, or None when the key may be used."""
    if deployed is None or deployed == current or allowed:
        return None
    return (
        f"openclaw-phala:{guarded.key_setting} ({guarded.owner}): differs from the key it is "
        f"running with. A new key {guarded.loss}. If that is intended, set "
        f"{guarded.opt_in_setting}: true for this `pulumi up`, then remove it"
    )


def checked_key(
    key: pulumi.Output[str],
    deployed_fingerprint: pulumi.Output[Any],
    guarded: GuardedKey,
    allowed: bool,
) -> pulumi.Output[str]:
    """The key, once it is known not to differ from the deployed one (or allowed to).

    Everything that deploys the key takes it from here, so a refused key fails the
    preview and never reaches a CVM."""

    def check(values: list[Any]) -> str:
        current_key, deployed = values
        message = refusal(guarded, deployed, key_fingerprint(current_key), allowed)
        if message is not None:
            raise pulumi.RunError(message)
        return current_key

    return pulumi.Output.secret(pulumi.Output.all(key, deployed_fingerprint).apply(check))

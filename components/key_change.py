"""Refusing a new MASTER_KEY (or mux register key or JWT key) for what is already running.

A running tenant's MASTER_KEY encrypts its R2 state and is the root of its gateway token
and device identity (openclawId); the mux register key is held by every tenant that
joined the mux; the gateways cache the public half of the mux's JWT key. A changed key
deploys as a quiet in-place update, so the program compares a fingerprint of each key
with the one the last deployment exported, and fails the preview, naming what would be
lost, unless the operator opted in for that tenant or mux.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

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


# What a key that is no longer configured is fingerprinted as: it differs from any key.
NO_KEY: Final = "none"


@dataclass(frozen=True)
class KeyToCheck:
    key: pulumi.Output[str] | None  # secret; None when no key is configured any more
    deployed_fingerprint: pulumi.Input[str | None]  # what the last deployment exported
    guarded: GuardedKey
    fingerprint: Callable[[str], str] = key_fingerprint  # public, equal exactly when the key is


def checked_keys(keys: Sequence[KeyToCheck], allowed: bool) -> list[pulumi.Output[str] | None]:
    """Each key (None stays None), once none of them differs from the deployed one (or
    the change is allowed).

    Everything that deploys a key takes it from here, so a refused key fails the preview
    and never reaches a CVM. The keys are checked together so that one error names every
    refused key: separate checks would each fail on their own, and the run reports only
    the first failure."""

    def check(values: list[Any]) -> list[Any]:
        current, deployed = values[: len(keys)], values[len(keys) :]
        messages = [
            message
            for spec, key, last in zip(keys, current, deployed, strict=True)
            if (
                message := refusal(
                    spec.guarded, last, NO_KEY if key is None else spec.fingerprint(key), allowed
                )
            )
            is not None
        ]
        if messages:
            raise pulumi.RunError("\n".join(messages))
        return current

    checked = pulumi.Output.all(
        *(spec.key for spec in keys), *(spec.deployed_fingerprint for spec in keys)
    ).apply(check)
    return [
        None if spec.key is None else pulumi.Output.secret(checked.apply(_item(index)))
        for index, spec in enumerate(keys)
    ]


def _item(index: int) -> Callable[[list[Any]], Any]:
    def pick(values: list[Any]) -> Any:
        return values[index]

    return pick


def checked_key(
    key: pulumi.Output[str],
    deployed_fingerprint: pulumi.Input[str | None],
    guarded: GuardedKey,
    allowed: bool,
) -> pulumi.Output[str]:
    """One key, checked as checked_keys does."""
    (checked,) = checked_keys([KeyToCheck(key, deployed_fingerprint, guarded)], allowed)
    assert checked is not None  # a given key comes back as an Output
    return checked

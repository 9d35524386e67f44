"""Key-change guards: the fingerprint, the refusal rule and its message."""

from __future__ import annotations

import pytest

from components import derivation
from components.key_change import GuardedKey, key_fingerprint, refusal

KEY = "alice-master-key-0123456789abcdef0123456789"
GUARDED = GuardedKey(
    key_setting="tenantSecrets.alice-agent.masterKey",
    owner="tenant alice-agent",
    opt_in_setting="tenants[0].allowKeyChange",
    loss="makes its encrypted state in R2 unreadable",
)


def test_fingerprint_is_stable_hex_and_tells_keys_apart() -> None:
    assert key_fingerprint(KEY) == key_fingerprint(KEY)
    assert len(key_fingerprint(KEY)) == 32 and int(key_fingerprint(KEY), 16) >= 0
    assert key_fingerprint(KEY) != key_fingerprint(KEY + "x")


def test_fingerprint_is_none_of_the_values_the_image_derives() -> None:
    fingerprint = key_fingerprint(KEY)
    keys = derivation.derive_tenant_keys(KEY)
    derived = [
        keys.gateway_token,
        keys.rclone_crypt_password,
        keys.rclone_crypt_salt,
        keys.openclaw_id,
    ]
    for value in derived:
        assert fingerprint not in value and value not in fingerprint
    assert KEY not in fingerprint


@pytest.mark.parametrize(
    ("deployed", "allowed"),
    [(None, False), (key_fingerprint(KEY), False), ("0" * 32, True)],
    ids=["never deployed", "same key", "opted in"],
)
def test_no_refusal_when_nothing_running_would_lose_anything(
    deployed: str | None, allowed: bool
) -> None:
    assert refusal(GUARDED, deployed, key_fingerprint(KEY), allowed) is None


def test_a_changed_key_is_refused_naming_the_key_the_tenant_the_loss_and_the_opt_in() -> None:
    message = refusal(GUARDED, "0" * 32, key_fingerprint(KEY), allowed=False)
    assert message is not None
    assert message.startswith(
        "openclaw-phala:tenantSecrets.alice-agent.masterKey (tenant alice-agent)"
    )
    assert "makes its encrypted state in R2 unreadable" in message
    assert "tenants[0].allowKeyChange: true" in message
    assert KEY not in message and key_fingerprint(KEY) not in message

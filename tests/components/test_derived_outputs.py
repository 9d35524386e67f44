"""Derived values are secret where they are made, not only where they are consumed.

Every consumer (the bootstrap config, the dashboard URL, the stack outputs) wraps the
gateway token again, so a missing wrap at the source would pass every whole-program
test while leaving the next consumer one forgotten wrap away from a plaintext leak.
"""

from __future__ import annotations

import pulumi
import pytest

from components import derivation
from components.derived_outputs import mux_key_outputs, tenant_key_outputs
from components.secret_value import SecretValue
from plan.evaluate import FakeCloud

MASTER_KEY = "tenant-master-key-0123456789abcdef0123456789"
MUX_MASTER_KEY = "mux-master-key-for-derived-outputs-0123456789"
TENANT_SECRET_FIELDS = ("gateway_token", "rclone_crypt_password", "rclone_crypt_salt")


@pytest.fixture(autouse=True)
def mock_runtime() -> None:
    pulumi.runtime.set_mocks(FakeCloud(), project="openclaw-phala", stack="prod")


@pytest.mark.parametrize(
    "master_key",
    [SecretValue(MASTER_KEY), MASTER_KEY],
    ids=["known at preview (SecretValue)", "a plain Input"],
)
@pulumi.runtime.test
async def test_tenant_secrets_are_secret_and_the_openclaw_id_public_where_derived(
    master_key: SecretValue | str,
) -> None:
    outputs = tenant_key_outputs(master_key)
    expected = derivation.derive_tenant_keys(MASTER_KEY)
    for name in TENANT_SECRET_FIELDS:
        output = getattr(outputs, name)
        assert await output.is_secret(), name
        assert await output.future() == getattr(expected, name), name
    assert not await outputs.openclaw_id.is_secret()
    assert await outputs.openclaw_id.future() == expected.openclaw_id


@pulumi.runtime.test
async def test_mux_secrets_are_secret_where_derived_from_a_plain_master_key() -> None:
    # MuxServer passes the revealed (plain str) mux master key: nothing upstream marks it.
    outputs = mux_key_outputs(MUX_MASTER_KEY)
    expected = derivation.derive_mux_keys(MUX_MASTER_KEY)
    for name in ("register_key", "admin_token"):
        output = getattr(outputs, name)
        assert await output.is_secret(), name
        assert await output.future() == getattr(expected, name), name

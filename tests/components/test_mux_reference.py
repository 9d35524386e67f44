"""Reading the mux from another stack: secretness across the reference, clear errors."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from components.mux_reference import mux_endpoint_from_stack, require_output_field
from plan.evaluate import FakeCloud

STACK = "organization/openclaw-phala/mux"
OUTPUTS: dict[str, Any] = {
    "contractVersion": 1,
    "mux": {"baseUrl": "https://app-18891.example.network"},
    "muxSecrets": {"registerKey": "the-register-key-0123456789", "adminToken": "admin"},
}


def endpoint_with(secret_output_names: list[str]) -> Any:
    mocks = FakeCloud({STACK: {"outputs": OUTPUTS, "secret": secret_output_names}})
    pulumi.runtime.set_mocks(mocks, project="openclaw-phala", stack="tenants")
    return mux_endpoint_from_stack(STACK)


@pulumi.runtime.test
async def test_register_key_is_secret_when_the_source_marks_it() -> None:
    endpoint = endpoint_with(["muxSecrets"])
    assert await endpoint.register_key.future() == "the-register-key-0123456789"
    assert await endpoint.register_key.is_secret()
    assert await endpoint.base_url.future() == "https://app-18891.example.network"
    assert not await endpoint.base_url.is_secret()


@pulumi.runtime.test
async def test_register_key_is_secret_even_when_the_source_does_not_mark_it() -> None:
    endpoint = endpoint_with([])
    assert await endpoint.register_key.is_secret()


@pytest.mark.parametrize(
    ("version", "value", "message"),
    [
        (None, {}, "has no contractVersion output"),
        (2, {}, "has contractVersion 2"),
        (1, None, "has no 'mux' output"),
        (1, {"baseURL": "x"}, "output 'mux' has no 'baseUrl' string"),
        (1, {"baseUrl": ""}, "output 'mux' has no 'baseUrl' string"),
    ],
)
def test_require_output_field_explains_what_is_wrong(
    version: Any, value: Any, message: str
) -> None:
    with pytest.raises(pulumi.RunError) as info:
        require_output_field(STACK, version, "mux", value, "baseUrl")
    assert str(info.value).startswith(f"muxStack {STACK}: ")
    assert message in str(info.value)


def test_require_output_field_returns_the_value() -> None:
    assert require_output_field(STACK, 1, "mux", {"baseUrl": "https://x"}, "baseUrl") == "https://x"

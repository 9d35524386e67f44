"""Joining a mux deployed by another stack, through its stack outputs."""

from __future__ import annotations

from typing import Any

import pulumi

from components.deployed_stack import READ_STACK_OUTPUTS
from components.mux_server import MuxEndpoint

SUPPORTED_CONTRACT_VERSION = 1


def require_readable_stack(stack_name: str) -> None:
    """Fail the preview in one line, naming muxStack, when the stack cannot be read.

    Through the engine's function behind every StackReference: its failure is an error
    the program can catch, where a failed StackReference read aborts the whole preview."""
    try:
        pulumi.runtime.invoke(READ_STACK_OUTPUTS, {"name": stack_name})
    except Exception as error:
        # "invoke of … failed: invocation of … returned an error: unknown stack "…"": keep
        # the engine's own reason.
        reason = str(error).rsplit("returned an error: ", 1)[-1].split(" failed: ", 1)[-1]
        raise pulumi.RunError(
            f"muxStack {stack_name}: cannot be read ({reason}); it must name a deployed "
            "mux stack in this backend, as <organization>/openclaw-phala/<stack>"
        ) from None


def require_output_field(
    stack_name: str, version: Any, output_name: str, value: Any, field_name: str
) -> str:
    """One field of another stack's outputs, or a RunError saying what is wrong."""
    if version != SUPPORTED_CONTRACT_VERSION:
        found = "no contractVersion output" if version is None else f"contractVersion {version}"
        raise pulumi.RunError(
            f"muxStack {stack_name}: has {found}; this program reads output contract "
            f"{SUPPORTED_CONTRACT_VERSION} (is it an openclaw-phala stack that has been deployed?)"
        )
    if value is None:
        raise pulumi.RunError(
            f"muxStack {stack_name}: has no '{output_name}' output; it must deploy a mux "
            "(muxName set) and have run `pulumi up`"
        )
    field = value.get(field_name) if isinstance(value, dict) else None
    if not isinstance(field, str) or not field:
        raise pulumi.RunError(
            f"muxStack {stack_name}: output '{output_name}' has no '{field_name}' string"
        )
    return field


def mux_endpoint_from_stack(stack_name: str) -> MuxEndpoint:
    """Read the mux base URL and register key another stack exports.

    The register key stays secret across the reference: the source stack exports
    it inside the secret `muxSecrets` output, and it is re-wrapped here as well.
    """
    require_readable_stack(stack_name)
    reference = pulumi.StackReference("mux-stack", stack_name=stack_name)
    version = reference.get_output("contractVersion")

    def field(output_name: str, field_name: str) -> pulumi.Output[str]:
        return pulumi.Output.all(version, reference.get_output(output_name)).apply(
            lambda both: require_output_field(stack_name, both[0], output_name, both[1], field_name)
        )

    return MuxEndpoint(
        base_url=field("mux", "baseUrl"),
        register_key=pulumi.Output.secret(field("muxSecrets", "registerKey")),
    )

"""The Pulumi SDK's own debug messages, kept out of the engine unless asked for.

The Python SDK (pulumi 3.272, pulumi/log.py `debug`, called from pulumi/runtime/
resource.py, rpc.py, invoke.py and stack.py) sends a debug message to the engine for
each step of every registration: about five per resource, thirty per tenant, each a
synchronous gRPC call that blocks the program's event loop until the engine answers.
The engine shows them only under `pulumi up --debug` (pkg/v3 v3.274.0
backend/display/progress.go:1546 and diff.go:172 drop debug diagnostics otherwise).
At 100 tenants they were about 3,100 calls and a third of a no-op preview's program and
engine CPU (benchmarks/preview_breakdown.py).

So the program drops them, unless OPENCLAW_SDK_DEBUG_LOGS=1 (or true, yes, on) is set
for a run that needs them (with `--debug`). The program's own messages (info, warnings,
errors) are untouched; it logs nothing at debug level itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

SDK_DEBUG_LOGS_VAR = "OPENCLAW_SDK_DEBUG_LOGS"
KEEP_VALUES = frozenset({"1", "true", "yes", "on"})


def _dropped(*_args: Any, **_kwargs: Any) -> None:
    return None


# The SDK's own, to put back when asked (a process that runs the program twice, as the
# tests and the offline plan do, must not keep the first run's choice).
_SDK_DEBUG = pulumi.log.debug


def quiet_sdk_debug_logs(environ: Mapping[str, str]) -> bool:
    """Drop the SDK's debug messages unless the environment asks for them; True if dropped."""
    keep = environ.get(SDK_DEBUG_LOGS_VAR, "").strip().lower() in KEEP_VALUES
    # The SDK looks it up as `log.debug` at each call.
    pulumi.log.debug = _SDK_DEBUG if keep else _dropped
    return not keep

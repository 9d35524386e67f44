"""The real OpenClaw, run offline: see sandbox/openclaw.py (product code, shared with the
sandbox's gateway). Re-exported here for the oracle tests."""

from sandbox.openclaw import (
    CLI_TIMEOUT,
    DSTACK_ENV,
    GATEWAY_START_TIMEOUT,
    NETWORK_GUARD,
    NETWORK_OFF_ENV,
    ORACLE_DIR_VAR,
    CliResult,
    Gateway,
    OracleState,
    OracleUnavailableError,
    cli_script,
    free_port,
    locate_oracle,
)

__all__ = [
    "CLI_TIMEOUT",
    "DSTACK_ENV",
    "GATEWAY_START_TIMEOUT",
    "NETWORK_GUARD",
    "NETWORK_OFF_ENV",
    "ORACLE_DIR_VAR",
    "CliResult",
    "Gateway",
    "OracleState",
    "OracleUnavailableError",
    "cli_script",
    "free_port",
    "locate_oracle",
]

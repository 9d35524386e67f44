"""The bootstrap config's keys that only the image's OpenClaw fork accepts: see
sandbox/fork_keys.py (product code: the sandbox's upstream gateway needs them removed too)."""

from sandbox.fork_keys import (
    FORK_ONLY_KEYS,
    ForkOnlyKey,
    fork_value_problems,
    without_fork_only_keys,
)

__all__ = ["FORK_ONLY_KEYS", "ForkOnlyKey", "fork_value_problems", "without_fork_only_keys"]

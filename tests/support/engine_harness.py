"""The real Pulumi engine, run offline for tests: see sandbox/engine.py (product code,
shared with `scripts/sandbox`). Re-exported here for the tests that import it from here."""

from sandbox.engine import (
    ENGINE_DIR_VAR,
    ENGINE_SCRIPT,
    PASSPHRASE,
    PROJECT,
    REPO_ROOT,
    STANDIN_DIR,
    EngineUnavailableError,
    PulumiResult,
    PulumiWorkspace,
    bundled_toolchain,
    link_project,
    locate_engine,
)
from sandbox.processes import kill_group, kill_processes_with_env

__all__ = [
    "ENGINE_DIR_VAR",
    "ENGINE_SCRIPT",
    "PASSPHRASE",
    "PROJECT",
    "REPO_ROOT",
    "STANDIN_DIR",
    "EngineUnavailableError",
    "PulumiResult",
    "PulumiWorkspace",
    "bundled_toolchain",
    "kill_group",
    "kill_processes_with_env",
    "link_project",
    "locate_engine",
]

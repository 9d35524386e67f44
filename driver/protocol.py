"""The contract between the Pulumi program and the deploy driver.

The driver runs in the Pulumi engine's environment, not the program's venv, so
it and this module use only the standard library. Everything the driver needs
arrives as environment variables named here; secrets never travel in argv or
in the command string.
"""

from __future__ import annotations

from typing import Final

DRIVER_SCRIPT: Final = "driver/phala_cvm.py"  # relative to the project dir: no absolute paths
# -I -S: ignore PYTHON* variables, the user's site and site-packages. The driver is
# standard library only, and this keeps it so (and starts it faster).
PYTHON_FLAGS: Final = ("-I", "-S")
PYTHON: Final = " ".join(("python3", *PYTHON_FLAGS))
CREATE_COMMAND: Final = f"{PYTHON} {DRIVER_SCRIPT} create"
UPDATE_COMMAND: Final = f"{PYTHON} {DRIVER_SCRIPT} update"
DELETE_COMMAND: Final = f"{PYTHON} {DRIVER_SCRIPT} delete"

PREFIX: Final = "OPENCLAW_PHALA_"
ROLE: Final = PREFIX + "ROLE"  # "openclaw" or "mux": which compose may land where
CVM_NAME: Final = PREFIX + "CVM_NAME"
EXISTING_CVM_ID: Final = PREFIX + "EXISTING_CVM_ID"
INSTANCE_TYPE: Final = PREFIX + "INSTANCE_TYPE"
DISK_SIZE_GB: Final = PREFIX + "DISK_SIZE_GB"
REGION: Final = PREFIX + "REGION"
OS_IMAGE: Final = PREFIX + "OS_IMAGE"
KMS: Final = PREFIX + "KMS"
DEV_OS: Final = PREFIX + "DEV_OS"
SSH_PUBLIC_KEY: Final = PREFIX + "SSH_PUBLIC_KEY"
WAIT_TIMEOUT_SECONDS: Final = PREFIX + "WAIT_TIMEOUT_SECONDS"
COMPOSE: Final = PREFIX + "COMPOSE"
ENV_KEYS: Final = PREFIX + "ENV_KEYS"  # comma-separated, in the order they are written
SECRET_ENV_KEYS: Final = PREFIX + "SECRET_ENV_KEYS"  # the subset scrubbed from all output
ENV_VALUE_PREFIX: Final = PREFIX + "ENV__"  # + KEY holds each CVM env value
# Optional check after `running`: a URL template with {app_id} and {base_domain},
# and what the answer must be (HEALTH_EXPECT_*).
HEALTH_URL_TEMPLATE: Final = PREFIX + "HEALTH_URL_TEMPLATE"
HEALTH_EXPECT: Final = PREFIX + "HEALTH_EXPECT"
HEALTH_EXPECT_JSON_OK: Final = "json-ok"  # HTTP 200 with a JSON body {"ok": true}
HEALTH_EXPECT_HTTP: Final = "http"  # any HTTP answer below 500
# Raised by the program when it finds the CVM drifted: a changed input, so the update
# path runs and redeploys (components/drift_repair.py). The driver does not read it.
REPAIR_GENERATION: Final = PREFIX + "REPAIR_GENERATION"

# Operator environment, deliberately not Command inputs: rotating the API key or
# moving the checkout must not redeploy anything.
CLI_OVERRIDE: Final = PREFIX + "CLI"
API_KEY: Final = "PHALA_CLOUD_API_KEY"

ROLES: Final = ("openclaw", "mux")

# One JSON line on stdout; nothing in it is secret.
OUTPUT_FIELDS: Final = ("cvmId", "appId", "name", "status", "gatewayBaseDomain", "composeHash")


def env_value_var(key: str) -> str:
    return ENV_VALUE_PREFIX + key

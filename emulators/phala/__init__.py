"""An emulator of the Phala Cloud API, for the real `phala` CLI and the deploy driver.

Faithful to the shapes the pinned CLI (npm phala@1.1.18) validates for both API versions it
speaks, to the env encryption it performs, and, in time, to the lifecycle Phala's own SDKs,
Terraform provider and docs describe: an update restarts the CVM, a delete takes time, a
busy CVM refuses changes. Each behaviour, its source and the test that pins it are in
FIDELITY.md, with the behaviours no source settles and the modes (behaviour.py) that cover
each plausible answer. Only 127.0.0.1 is bound.

Layout (after moto): `models.py` the state and its lifecycle, `routes.py` which request does
what, `responses.py` the answer shapes, `errors.py` the error bodies, `server.py` the HTTP
server and the handle tests hold, `logs.py` container logs, `crypto.py` and `compose.py` the
env encryption and the app-compose. `python -m emulators.phala` runs one on its own.
"""

from emulators.phala.behaviour import (
    DRIVER_MODES,
    Behaviour,
    ComposeFileForm,
    DeletedView,
    DeletingView,
    HashTiming,
    RateLimit,
    Timings,
    UpdateStatuses,
)
from emulators.phala.compose import compose_hash_of, published_ports
from emulators.phala.crypto import AppEnvKeypair
from emulators.phala.models import (
    DEFAULT_DEV_IMAGE,
    STATUS_DELETED,
    STATUS_DELETING,
    STATUS_ERROR,
    STATUS_RUNNING,
    STATUS_STARTING,
    STATUS_STOPPED,
    STATUS_STOPPING,
    STATUS_UPDATING,
    EmulatedCvm,
    RequestRecord,
)
from emulators.phala.published import health_url_template
from emulators.phala.responses import API_VERSION_CURRENT, API_VERSION_LEGACY
from emulators.phala.server import DEFAULT_API_KEY, PhalaCloudEmulator, cli_environment

__all__ = [
    "API_VERSION_CURRENT",
    "API_VERSION_LEGACY",
    "DEFAULT_API_KEY",
    "DEFAULT_DEV_IMAGE",
    "DRIVER_MODES",
    "STATUS_DELETED",
    "STATUS_DELETING",
    "STATUS_ERROR",
    "STATUS_RUNNING",
    "STATUS_STARTING",
    "STATUS_STOPPED",
    "STATUS_STOPPING",
    "STATUS_UPDATING",
    "AppEnvKeypair",
    "Behaviour",
    "ComposeFileForm",
    "DeletedView",
    "DeletingView",
    "EmulatedCvm",
    "HashTiming",
    "PhalaCloudEmulator",
    "RateLimit",
    "RequestRecord",
    "Timings",
    "UpdateStatuses",
    "cli_environment",
    "compose_hash_of",
    "health_url_template",
    "published_ports",
]

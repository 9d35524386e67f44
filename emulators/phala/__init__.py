"""The Phala Cloud API emulator (see `emulators.phala.emulator` and FIDELITY.md)."""

from emulators.phala.emulator import (
    API_VERSION_CURRENT,
    API_VERSION_LEGACY,
    DEFAULT_API_KEY,
    DEFAULT_DEV_IMAGE,
    PHALA_BIN,
    STATUS_ERROR,
    STATUS_RUNNING,
    STATUS_STARTING,
    AppEnvKeypair,
    EmulatedCvm,
    PhalaCloudEmulator,
    RequestRecord,
    compose_hash_of,
    parse_json_from_output,
    published_ports,
    run_phala,
)

__all__ = [
    "API_VERSION_CURRENT",
    "API_VERSION_LEGACY",
    "DEFAULT_API_KEY",
    "DEFAULT_DEV_IMAGE",
    "PHALA_BIN",
    "STATUS_ERROR",
    "STATUS_RUNNING",
    "STATUS_STARTING",
    "AppEnvKeypair",
    "EmulatedCvm",
    "PhalaCloudEmulator",
    "RequestRecord",
    "compose_hash_of",
    "parse_json_from_output",
    "published_ports",
    "run_phala",
]

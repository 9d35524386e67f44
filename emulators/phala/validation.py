"""What the emulated API refuses in a request: a bad provision body, an env it cannot read.

The name rule is the CLI's client-side check and the SDK's provision schema; the compose
size limit is the CLI's (compose plus pre-launch script at most 200 KB); the env limits are
dstack's guest limits (dstack `parse_env_file.rs`: 1024 items, 128 KB per value), checked at
the API because an env the guest cannot take would fail the CVM's boot.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from emulators.phala import errors
from emulators.phala.crypto import AppEnvKeypair, EnvDecryptionError
from emulators.phala.models import (
    CVM_NAME_PATTERN,
    INSTANCE_TYPES,
    MAX_COMPOSE_AND_SCRIPT_BYTES,
    MAX_ENV_ITEMS,
    MAX_ENV_VALUE_BYTES,
)


def checked_provision(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The name and compose_file of a valid `POST /cvms/provision` body."""
    name = body.get("name")
    if not isinstance(name, str) or not (5 <= len(name) <= 63) or not CVM_NAME_PATTERN.match(name):
        raise errors.validation_error(
            ["body", "name"],
            "Name must be 5-63 characters, start with letter, and contain only "
            "letters/numbers/hyphens",
        )
    kms = str(body.get("kms") or "PHALA").upper()
    if kms != "PHALA":
        raise errors.structured(
            HTTPStatus.BAD_REQUEST,
            errors.ERR_INVALID_REQUEST,
            f"KMS {kms} is not supported by the emulator (only PHALA)",
        )
    compose_file = body.get("compose_file")
    if not isinstance(compose_file, dict):
        raise errors.validation_error(["body", "compose_file"], "Field required")
    docker_compose = compose_file.get("docker_compose_file")
    if not isinstance(docker_compose, str) or not docker_compose.strip():
        raise errors.validation_error(
            ["body", "compose_file", "docker_compose_file"], "Field required"
        )
    script = compose_file.get("pre_launch_script")
    if len(docker_compose.encode()) + len((script or "").encode()) > MAX_COMPOSE_AND_SCRIPT_BYTES:
        raise errors.structured(
            HTTPStatus.BAD_REQUEST,
            errors.ERR_INVALID_COMPOSE,
            "The Docker Compose file is too large",
        )
    instance_type = body.get("instance_type")
    if instance_type is not None and instance_type not in INSTANCE_TYPES:
        raise errors.structured(
            HTTPStatus.BAD_REQUEST,
            errors.ERR_INVALID_REQUEST,
            f"Instance type '{instance_type}' not found",
        )
    return name, compose_file


def decrypt_or_reject(keypair: AppEnvKeypair, encrypted_env: Any) -> list[tuple[str, str]] | None:
    """The env pairs, or None when none was sent. The real API cannot read the env (only
    the TEE can, and an undecryptable env fails its boot); the emulator refuses it at once
    so a broken client fails loudly."""
    if encrypted_env is None or encrypted_env == "":
        return None
    if not isinstance(encrypted_env, str):
        raise errors.validation_error(["body", "encrypted_env"], "Input should be a valid string")
    try:
        pairs = keypair.decrypt_env(encrypted_env)
    except EnvDecryptionError as error:
        raise errors.structured(
            HTTPStatus.BAD_REQUEST,
            errors.ERR_INVALID_REQUEST,
            f"encrypted_env could not be decrypted: {error}",
        ) from error
    if len(pairs) > MAX_ENV_ITEMS:
        raise errors.structured(
            HTTPStatus.BAD_REQUEST,
            errors.ERR_INVALID_REQUEST,
            f"too many env items ({len(pairs)} > {MAX_ENV_ITEMS})",
        )
    for key, value in pairs:
        if len(value.encode()) > MAX_ENV_VALUE_BYTES:
            raise errors.structured(
                HTTPStatus.BAD_REQUEST,
                errors.ERR_INVALID_REQUEST,
                f"env value of {key} exceeds {MAX_ENV_VALUE_BYTES} bytes",
            )
    return pairs

"""Talking to the Phala API emulator directly over HTTP, for tests that only need a CVM to
exist or a request answered (each `phala` CLI start costs about a second of Node start-up):
requests as a client sends them, CVMs seeded with or without an env encrypted the way the
CLI encrypts it."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from emulators.phala import (
    API_VERSION_LEGACY,
    STATUS_RUNNING,
    EmulatedCvm,
    PhalaCloudEmulator,
)


def api_request(
    emulator: PhalaCloudEmulator,
    method: str,
    path: str,
    body: Any = None,
    *,
    version: str = API_VERSION_LEGACY,
    api_key: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """(status, JSON body or None, headers) of one request, whatever the status."""
    request = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1
        emulator.api_prefix + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={
            "Content-Type": "application/json",
            "X-API-Key": emulator.api_key if api_key is None else api_key,
            "X-Phala-Version": version,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None, dict(error.headers)


def api_call(emulator: PhalaCloudEmulator, method: str, path: str, body: Any = None) -> Any:
    """The body of a request that must succeed."""
    status, answer, _ = api_request(emulator, method, path, body)
    assert 200 <= status < 300, (status, answer)
    return answer


def encrypt_env_like_cli(env: dict[str, str], public_key_hex: str) -> str:
    """What the CLI sends as `encrypted_env` (see emulators/phala/crypto.py)."""
    ephemeral = X25519PrivateKey.generate()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)))
    iv = os.urandom(12)
    plaintext = json.dumps({"env": [{"key": k, "value": v} for k, v in env.items()]}).encode()
    sealed = AESGCM(shared).encrypt(iv, plaintext, None)
    return (ephemeral.public_key().public_bytes_raw() + iv + sealed).hex()


def seed_cvm(
    emulator: PhalaCloudEmulator,
    name: str,
    compose: str,
    *,
    env: dict[str, str] | None = None,
    public_logs: bool = True,
    running: bool = True,
) -> EmulatedCvm:
    """A CVM made over HTTP, as the CLI makes one: running (and the request log cleared)
    unless `running` is false, when it is left booting."""
    env = env or {}
    provision = api_call(
        emulator,
        "POST",
        "/cvms/provision",
        {
            "name": name,
            "instance_type": "tdx.medium",
            "kms": "PHALA",
            "listed": False,
            "compose_file": {
                "name": "",
                "docker_compose_file": compose,
                "allowed_envs": list(env),
                "public_logs": public_logs,
                "public_sysinfo": True,
            },
        },
    )
    commit: dict[str, Any] = {
        "app_id": provision["app_id"],
        "compose_hash": provision["compose_hash"],
    }
    if env:
        commit["encrypted_env"] = encrypt_env_like_cli(env, provision["app_env_encrypt_pubkey"])
    committed = api_call(emulator, "POST", "/cvms", commit)
    if running:
        emulator.set_status(committed["vm_uuid"], STATUS_RUNNING)
        emulator.clear_log()
    cvm = emulator.cvm(committed["vm_uuid"])
    assert cvm is not None
    return cvm

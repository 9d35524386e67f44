"""Seeding the Phala API emulator directly over HTTP, for tests that only need a
CVM to exist (each `phala` CLI start costs about a second of Node start-up)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from emulators.phala import (
    API_VERSION_LEGACY,
    STATUS_RUNNING,
    EmulatedCvm,
    PhalaCloudEmulator,
)


def api_call(emulator: PhalaCloudEmulator, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1
        emulator.api_prefix + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={
            "Content-Type": "application/json",
            "X-API-Key": emulator.api_key,
            "X-Phala-Version": API_VERSION_LEGACY,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        raw = response.read()
        return json.loads(raw) if raw else None


def seed_cvm(emulator: PhalaCloudEmulator, name: str, compose: str) -> EmulatedCvm:
    """A running CVM made over HTTP (no env), for tests that only need one to exist."""
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
                "allowed_envs": [],
                "public_logs": True,
                "public_sysinfo": True,
            },
        },
    )
    committed = api_call(
        emulator,
        "POST",
        "/cvms",
        {"app_id": provision["app_id"], "compose_hash": provision["compose_hash"]},
    )
    emulator.set_status(committed["vm_uuid"], STATUS_RUNNING)
    emulator.clear_log()
    cvm = emulator.cvm(committed["vm_uuid"])
    assert cvm is not None
    return cvm

"""A stand-in plugin started as the engine starts it, and a gRPC client for it.

The engine runs a plugin binary, reads the port from its first stdout line and talks
gRPC; these tests do the same with the stand-in scripts, so each behaviour is pinned at
the protocol the engine uses, without the engine."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import provider_pb2_grpc

from standins.plugin_rpc import SECRET_SIGNATURE, SIGNATURE_KEY, UNKNOWN

REPO_ROOT = Path(__file__).resolve().parents[2]
STANDINS = REPO_ROOT / "standins"
WAIT_SECONDS = 30.0


@contextlib.contextmanager
def plugin_process(
    script: str, *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Iterator[tuple[subprocess.Popen[str], grpc.Channel]]:
    process = subprocess.Popen(
        [sys.executable, str(STANDINS / script), *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=WAIT_SECONDS)
        yield process, channel
        channel.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=WAIT_SECONDS)


@contextlib.contextmanager
def provider(
    script: str, *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    with plugin_process(script, *args, env=env, cwd=cwd) as (_, channel):
        yield provider_pb2_grpc.ResourceProviderStub(channel)


def struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(dict(values))
    return message


def as_dict(message: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def secret(value: Any) -> dict[str, Any]:
    return {SIGNATURE_KEY: SECRET_SIGNATURE, "value": value}


def wait_for(condition: Callable[[], bool], what: str, seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


__all__ = ["UNKNOWN", "as_dict", "is_alive", "provider", "secret", "struct", "wait_for"]

"""gRPC plumbing shared by the stand-in plugins: serving, and Pulumi's property encoding.

Faithful to the plugin contract the engine expects of every plugin binary: serve gRPC on
127.0.0.1 at a port the kernel picks, print that port alone on the first stdout line,
and keep serving until the engine kills the process. Property values travel as
`google.protobuf.Struct`s in which a secret is an object carrying the secret signature and
a `value`, and an unknown (preview) value is a sentinel string.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Mapping
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

from standins.timings import TimingInterceptor, process_cpu_seconds, timing_log

SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIGNATURE = "1b47061264138c4ac30d75fd1eb44270"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
MAX_MESSAGE_BYTES = 400 * 1024 * 1024  # the engine's own limit for plugin messages


def serve(plugin: str, register: Callable[[grpc.Server], None]) -> None:
    """Start the server, announce the port to the engine, and block until killed.

    With OPENCLAW_STANDIN_TIMINGS set, each call is timed (standins/timings.py)."""
    log = timing_log(plugin)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16),
        interceptors=[TimingInterceptor(log)] if log is not None else None,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    if log is not None:
        log.write({"port": port, "start": time.time(), "cpu": process_cpu_seconds()})
    # The engine interrupts its plugins when it is done with them: stop quietly, as the
    # Go plugins do, instead of printing a KeyboardInterrupt traceback into its output.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server.stop(grace=None))
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    server.wait_for_termination()


def to_dict(message: struct_pb2.Struct | None) -> dict[str, Any]:
    if message is None:
        return {}
    return json_format.MessageToDict(message)


def to_struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(dict(values))
    return struct


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIGNATURE_KEY) == SECRET_SIGNATURE


def secret(value: Any) -> dict[str, Any]:
    return {SIGNATURE_KEY: SECRET_SIGNATURE, "value": value}


def reveal(value: Any) -> Any:
    """The plain value, with every secret wrapper removed at any depth."""
    if is_secret(value):
        return reveal(value.get("value"))
    if isinstance(value, dict):
        return {key: reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal(item) for item in value]
    return value


def contains_unknown(value: Any) -> bool:
    if value == UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(contains_unknown(item) for item in value.values())
    if isinstance(value, list):
        return any(contains_unknown(item) for item in value)
    return False


class StandinProvider(provider_pb2_grpc.ResourceProviderServicer):
    """What every stand-in provider answers alike: a name and version, secrets and
    resources accepted, previews supported, and provider config taken as given."""

    name = ""
    version = ""

    def Handshake(self, request: Any, context: Any) -> Any:
        return provider_pb2.ProviderHandshakeResponse(accept_secrets=True, accept_resources=True)

    def GetPluginInfo(self, request: Any, context: Any) -> Any:
        return plugin_pb2.PluginInfo(version=self.version)

    def GetSchema(self, request: Any, context: Any) -> Any:
        schema = {"name": self.name, "version": self.version}
        return provider_pb2.GetSchemaResponse(schema=json.dumps(schema))

    def CheckConfig(self, request: Any, context: Any) -> Any:
        return provider_pb2.CheckResponse(inputs=request.news)

    def DiffConfig(self, request: Any, context: Any) -> Any:
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)

    def Configure(self, request: Any, context: Any) -> Any:
        return provider_pb2.ConfigureResponse(
            acceptSecrets=True, supportsPreview=True, acceptResources=True
        )

    def Cancel(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()


def serve_provider(provider: StandinProvider) -> None:
    serve(
        provider.name,
        lambda server: provider_pb2_grpc.add_ResourceProviderServicer_to_server(provider, server),
    )

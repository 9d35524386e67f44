"""Per-call timings of a stand-in plugin, written only when asked (for benchmarks).

With OPENCLAW_STANDIN_TIMINGS set to a folder, every stand-in appends one JSON line per
gRPC call it serves to `<folder>/<plugin>-<pid>.jsonl`: the method, when it started
(epoch seconds), how long it took, and the process's CPU time so far. The first line
names the plugin and the port it serves on, which is how a reader matches the engine's
client spans (`net.peer.name`) to a plugin. Unset, nothing is wrapped or written.

The records hold method names and numbers only, never a request or a response, so no
secret can reach the file.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

TIMINGS_VAR = "OPENCLAW_STANDIN_TIMINGS"


def process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pid_cpu_seconds(pid: int) -> float | None:
    """CPU of one running process (all its threads) from /proc, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # utime and stime are fields 14 and 15 of proc(5); the split starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU of the children this process has waited for (the language host: the program)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class TimingLog:
    """Appends records to one file; safe to call from the server's worker threads."""

    def __init__(self, folder: Path, plugin: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{plugin}-{os.getpid()}.jsonl"
        self.plugin = plugin
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps({"plugin": self.plugin, **record}) + "\n"
        with self._lock, self.path.open("a") as file:
            file.write(line)


@functools.cache
def timing_log(plugin: str) -> TimingLog | None:
    """This process's log (one per plugin name), or None when timings were not asked for."""
    folder = os.environ.get(TIMINGS_VAR)
    return TimingLog(Path(folder), plugin) if folder else None


class TimingInterceptor(grpc.ServerInterceptor):
    """Times each unary call the server answers (every plugin RPC the engine makes is
    unary, except the streaming ones the stand-ins do not implement)."""

    def __init__(self, log: TimingLog) -> None:
        self.log = log

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = details.method.rsplit("/", 1)[-1]
        inner = handler.unary_unary
        log = self.log

        def timed(request: Any, context: Any) -> Any:
            started = time.time()
            clock = time.perf_counter()
            try:
                return inner(request, context)
            finally:
                log.write(
                    {
                        "method": method,
                        "start": started,
                        "seconds": time.perf_counter() - clock,
                        "cpu": process_cpu_seconds(),
                    }
                )

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

"""Reading the engine's own trace of one `pulumi preview` or `pulumi up` into phases.

The pinned engine (v3.274.0) traces two ways. `--tracing file:PATH` keeps the spans in an
appdash MemoryStore and writes it at exit gob-encoded (github.com/pulumi/appdash
store.go:327, via sdk/go/common/util/cmdutil/trace.go InitTracing), a Go-only format.
`--otel-traces file://PATH` sends the same spans (the OpenTracing gRPC interceptors'
client and server spans, and the engine's own: `pulumi`, `pulumi-plan`, `run-program`,
`newPlugin`) through its OTLP receiver to a file exporter that writes one OTLP/JSON
`ExportTraceServiceRequest` per line (sdk/go/common/util/otelreceiver/file_exporter.go).
This reads the second. Times are epoch nanoseconds, so they line up with the stand-ins'
timing records (standins/timings.py) and the emulators' request logs.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVER = 2  # OTLP SpanKind
CLIENT = 3
READ_STACK_OUTPUTS = "readStackOutputs"


@dataclass(frozen=True)
class Span:
    name: str
    kind: int
    start: float  # epoch seconds
    end: float
    attributes: dict[str, Any]

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def method(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    @property
    def service(self) -> str:
        return self.name.rsplit("/", 1)[0] if "/" in self.name else ""

    @property
    def peer_port(self) -> int | None:
        peer = self.attributes.get("net.peer.name")
        if not isinstance(peer, str) or ":" not in peer:
            return None
        port = peer.rsplit(":", 1)[1]
        return int(port) if port.isdigit() else None


def _attribute_value(value: dict[str, Any]) -> Any:
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    return None


def read_spans(path: Path) -> list[Span]:
    """Every span of an `--otel-traces file://` file, in start order."""
    spans: list[Span] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        for resource_spans in json.loads(line).get("resourceSpans", []):
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    spans.append(
                        Span(
                            name=span["name"],
                            kind=int(span.get("kind", 0)),
                            start=int(span["startTimeUnixNano"]) / 1e9,
                            end=int(span["endTimeUnixNano"]) / 1e9,
                            attributes={
                                a["key"]: _attribute_value(a.get("value", {}))
                                for a in span.get("attributes", [])
                            },
                        )
                    )
    return sorted(spans, key=lambda s: s.start)


@dataclass(frozen=True)
class CallRecord:
    """One call a stand-in served, as standins/timings.py wrote it."""

    plugin: str
    method: str
    start: float
    seconds: float


@dataclass
class StandinTimings:
    ports: dict[int, str] = field(default_factory=dict)  # port -> plugin
    calls: list[CallRecord] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # plugin -> CPU seconds (last seen)
    program_seconds: float = 0.0
    program_cpu: float = 0.0
    # (epoch seconds, the program's CPU seconds so far), as the language host sampled it
    program_cpu_samples: list[tuple[float, float]] = field(default_factory=list)

    def program_cpu_at(self, moment: float) -> float:
        """The program's CPU at an epoch time: the last sample taken by then (0 before)."""
        before = [cpu for at, cpu in self.program_cpu_samples if at <= moment]
        return before[-1] if before else 0.0


def read_standin_timings(folder: Path) -> StandinTimings:
    timings = StandinTimings()
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            plugin = record["plugin"]
            if "port" in record:
                timings.ports[int(record["port"])] = plugin
            if "cpu" in record:
                timings.cpu[plugin] = max(timings.cpu.get(plugin, 0.0), float(record["cpu"]))
            if record.get("method") == "program":
                timings.program_seconds += float(record["seconds"])
                timings.program_cpu += float(record["program_cpu"])
                timings.program_cpu_samples += [
                    (float(at), float(cpu)) for at, cpu in record.get("program_cpu_samples", [])
                ]
            elif "method" in record:
                timings.calls.append(
                    CallRecord(
                        plugin, record["method"], float(record["start"]), float(record["seconds"])
                    )
                )
    return timings


@dataclass(frozen=True)
class Phases:
    """Wall-clock phases of one run, in seconds, and what the RPCs cost."""

    total: float
    program_first_rpc_at: float  # epoch seconds: where the program's start ends
    engine_start: float  # `pulumi` starts -> the language host's Run begins
    # Run begins -> the program's first RPC: the interpreter, the SDK's and our imports,
    # the settings. Nothing is sent before: registrations wait for the first invoke (the
    # program's readStackOutputs, synchronous), which runs the SDK's event loop.
    program_start: float
    read_stack_outputs: float  # that invoke, as the engine served it
    program_registering: float  # readStackOutputs answered -> the program's last RPC answered
    program_end: float  # the program's last RPC answered -> Run returns (SDK shutdown, exit)
    engine_finish: float  # Run returns -> `pulumi` ends (steps left, snapshot, summary)
    # name -> (count, summed seconds) of what the engine served the program
    monitor_calls: dict[str, tuple[int, float]]
    # (plugin, method) -> (count, summed seconds) of the engine's calls to each plugin
    plugin_calls: dict[tuple[str, str], tuple[int, float]]


def _first(spans: Iterable[Span], name: str) -> Span | None:
    return next((span for span in spans if span.name == name), None)


def _summed(spans: Iterable[Span]) -> tuple[int, float]:
    count, seconds = 0, 0.0
    for span in spans:
        count += 1
        seconds += span.seconds
    return count, seconds


def _grouped(spans: Iterator[tuple[Any, Span]]) -> dict[Any, tuple[int, float]]:
    groups: dict[Any, list[Span]] = defaultdict(list)
    for key, span in spans:
        groups[key].append(span)
    return {key: _summed(members) for key, members in sorted(groups.items())}


class TraceError(ValueError):
    """The trace lacks a span every run has: not a complete preview or up."""


def phases(spans: list[Span], ports: dict[int, str]) -> Phases:
    root = _first(spans, "pulumi")
    run = _first(spans, "pulumirpc.LanguageRuntime/Run")
    if root is None or run is None:
        raise TraceError("the trace has no `pulumi` root span or no LanguageRuntime/Run")
    served = [s for s in spans if s.kind == SERVER and run.start <= s.start <= run.end]
    registrations = [s for s in served if s.method == "RegisterResource"]
    invokes = [s for s in served if s.method == "Invoke"]
    if not registrations:
        raise TraceError("the program registered nothing")
    first_rpc = min(s.start for s in served)
    # The program's first invoke is its readStackOutputs (components/deployed_stack.py).
    read = invokes[0] if invokes else None
    read_start = read.start if read else first_rpc
    read_end = read.end if read else first_rpc
    last_rpc = max(s.end for s in served)
    monitor = _grouped((s.name.removeprefix("pulumirpc."), s) for s in served)
    plugin_spans = (
        ((ports.get(port, f"port {port}"), s.method), s)
        for s in spans
        if s.kind == CLIENT
        and s.service == "pulumirpc.ResourceProvider"
        and (port := s.peer_port) is not None
    )
    return Phases(
        total=root.seconds,
        program_first_rpc_at=read_start,
        engine_start=run.start - root.start,
        program_start=read_start - run.start,
        read_stack_outputs=read_end - read_start,
        program_registering=last_rpc - read_end,
        program_end=run.end - last_rpc,
        engine_finish=root.end - run.end,
        monitor_calls=monitor,
        plugin_calls=_grouped(plugin_spans),
    )

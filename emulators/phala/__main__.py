"""Run the Phala Cloud API emulator on its own: `python -m emulators.phala --help`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from emulators.phala.backend import PhalaBackend
from emulators.phala.behaviour import (
    Behaviour,
    ComposeFileForm,
    DeletedView,
    HashTiming,
    RateLimit,
    Timings,
)
from emulators.phala.models import RequestRecord
from emulators.phala.server import DEFAULT_API_KEY, PhalaCloudEmulator
from emulators.request_log import JsonLinesLog


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.phala",
        description="Serve an emulated Phala Cloud API on 127.0.0.1 until interrupted.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the key clients must send")
    parser.add_argument("--boot-seconds", type=float, default=3.0, help="a new CVM's boot")
    parser.add_argument(
        "--update-seconds", type=float, default=4.0, help="an update's whole restart"
    )
    parser.add_argument("--delete-seconds", type=float, default=2.0, help="a delete")
    parser.add_argument(
        "--hash-timing", choices=[m.value for m in HashTiming], default=HashTiming.AT_SETTLE.value
    )
    parser.add_argument(
        "--deleted-view", choices=[m.value for m in DeletedView], default=DeletedView.GONE.value
    )
    parser.add_argument(
        "--compose-file-form",
        choices=[m.value for m in ComposeFileForm],
        default=ComposeFileForm.OBJECT.value,
    )
    parser.add_argument(
        "--rate-limit",
        metavar="N/SECONDS",
        help="answer 429 beyond N calls per SECONDS (default: no limit)",
    )
    parser.add_argument(
        "--request-log",
        type=Path,
        metavar="FILE",
        help="append each API call to FILE as a JSON line (method, path, status, CVM name)",
    )
    return parser.parse_args(argv)


def behaviour_from(options: argparse.Namespace) -> Behaviour:
    rate_limit = None
    if options.rate_limit:
        requests, _, seconds = options.rate_limit.partition("/")
        rate_limit = RateLimit(int(requests), float(seconds or 1))
    return Behaviour(
        timings=Timings.for_update(
            boot=options.boot_seconds, update=options.update_seconds, delete=options.delete_seconds
        ),
        hash_timing=HashTiming(options.hash_timing),
        deleted_view=DeletedView(options.deleted_view),
        compose_file_form=ComposeFileForm(options.compose_file_form),
        rate_limit=rate_limit,
    )


def cvm_named_by(backend: PhalaBackend, record: RequestRecord) -> str | None:
    """The name of the CVM a call is about, where the call says (its body's name or app
    id, or the id in its path)."""
    body: dict[str, Any] = record.body if isinstance(record.body, dict) else {}
    if isinstance(body.get("name"), str):
        return str(body["name"])
    segments = [part for part in record.path.strip("/").split("/") if part]
    identifier = body.get("app_id")
    if not isinstance(identifier, str) and len(segments) >= 2 and segments[0] == "cvms":
        identifier = segments[1]
    if not isinstance(identifier, str):
        return None
    cvm = backend.find(identifier)
    return cvm.name if cvm is not None else None


def request_writer(log: JsonLinesLog, backend: PhalaBackend) -> Callable[[RequestRecord], None]:
    def write(record: RequestRecord) -> None:
        log.write(
            {
                "at": record.at,
                "method": record.method,
                "path": record.path,
                "status": record.status,
                "cvm": cvm_named_by(backend, record),
            }
        )

    return write


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    emulator = PhalaCloudEmulator(
        options.api_key, port=options.port, behaviour=behaviour_from(options)
    )
    if options.request_log is not None:
        emulator.on_request = request_writer(JsonLinesLog(options.request_log), emulator.backend)
    with emulator:
        # One line a parent process can read: where the API is.
        print(f"PHALA_CLOUD_API_PREFIX={emulator.api_prefix}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

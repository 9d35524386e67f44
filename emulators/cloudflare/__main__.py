"""Run the Cloudflare API emulator on its own: `python -m emulators.cloudflare --help`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from emulators.cloudflare.emulator import DEFAULT_API_TOKEN, CfRequest, CloudflareEmulator
from emulators.request_log import JsonLinesLog


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.cloudflare",
        description="Serve an emulated Cloudflare API (R2 buckets, account tokens) on "
        "127.0.0.1 until interrupted.",
    )
    parser.add_argument("--account-id", required=True, help="the account (32 hex) the API knows")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    parser.add_argument(
        "--api-token", default=DEFAULT_API_TOKEN, help="the token clients must send"
    )
    parser.add_argument(
        "--request-log",
        type=Path,
        metavar="FILE",
        help="append each API call to FILE as a JSON line (method, path, status, name)",
    )
    return parser.parse_args(argv)


def request_writer(log: JsonLinesLog) -> Callable[[CfRequest], None]:
    def write(record: CfRequest) -> None:
        body = record.body if isinstance(record.body, dict) else {}
        name = body.get("name")
        log.write(
            {
                "at": time.time(),
                "method": record.method,
                "path": record.path,
                "status": record.status,
                "jurisdiction": record.jurisdiction,
                "name": name if isinstance(name, str) else None,
            }
        )

    return write


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    emulator = CloudflareEmulator(
        options.api_token, account_id=options.account_id, port=options.port
    )
    if options.request_log is not None:
        emulator.on_request = request_writer(JsonLinesLog(options.request_log))
    with emulator:
        # One line a parent process can read: where the API is.
        print(f"CLOUDFLARE_BASE_URL={emulator.base_url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

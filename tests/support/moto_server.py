"""moto's S3 server in a process of its own, on 127.0.0.1, stopped by its process id.

The object store behind the R2 front (tests/support/r2_front.py): moto 5 (pinned in
requirements.txt) keeps buckets and objects in memory and speaks the S3 REST API the
AWS SDKs use. Run as a module, it starts moto's threaded server on a free loopback port,
prints the port on one line, and serves until its stdin closes, so it also ends when the
test process dies without stopping it.
"""

from __future__ import annotations

import logging
import select
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from tests.support.process_groups import stop_group

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
START_TIMEOUT_SECONDS = 60.0
# moto checks no credential; these only sign the test's own direct reads and writes.
DIRECT_ACCESS_KEY_ID = "moto-direct-access"
DIRECT_SECRET_ACCESS_KEY = "moto-direct-secret"


@dataclass
class MotoServer:
    process: subprocess.Popen[str]
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def client(self) -> Any:
        """A boto3 S3 client straight to moto (not through the front): the test's own eyes."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=DIRECT_ACCESS_KEY_ID,
            aws_secret_access_key=DIRECT_SECRET_ACCESS_KEY,
            region_name="us-east-1",
        )

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        stop_group(self.process)


def start_moto_server() -> MotoServer:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.moto_server"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    # The port comes on one line once moto listens; EOF if it died.
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_SECONDS)
    line = process.stdout.readline() if ready else ""
    if not line.strip().isdigit():
        stop_group(process)
        raise RuntimeError(f"moto server did not start (exit {process.poll()}): {line!r}")
    return MotoServer(process=process, port=int(line))


def _serve() -> None:
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO; only failures are worth seeing.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin (or dies)
    finally:
        server.stop()


if __name__ == "__main__":
    _serve()

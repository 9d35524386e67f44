"""The local Phala Cloud and Cloudflare APIs as processes of their own, which outlive the
command that started them (`up` returns; `down` stops them).

Each runs `python -m emulators.<name>` from this checkout on 127.0.0.1 and a free port, in
a process group of its own, with an environment built from scratch; it prints where it
listens on its first line (read from a file, so no pipe is left to break) and writes each
call it answers to a JSON-lines request log in the sandbox folder (request_log.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from emulators.cloudflare import DEFAULT_API_TOKEN
from emulators.phala import DEFAULT_API_KEY, cli_environment, health_url_template
from emulators.request_log import read_json_lines
from sandbox.engine import REPO_ROOT
from sandbox.processes import Recorded

START_TIMEOUT_SECONDS = 30.0
# Phala API calls that only read, although one of them is a POST.
PHALA_READS = frozenset({("POST", "/status/batch")})


class ServiceError(RuntimeError):
    pass


@dataclass(frozen=True)
class PhalaTimings:
    """Seconds the local Phala Cloud takes (emulators/phala/behaviour.py)."""

    boot: float
    update: float  # a whole restart: the update's four phases together
    delete: float

    def arguments(self) -> list[str]:
        return [
            f"--boot-seconds={self.boot:g}",
            f"--update-seconds={self.update:g}",
            f"--delete-seconds={self.delete:g}",
        ]


@dataclass(frozen=True)
class LocalPhala:
    """The local Phala Cloud API as the engine workspace needs it (engine.PhalaEndpoint)."""

    api_prefix: str
    api_key: str = DEFAULT_API_KEY

    def cli_env(self, home: Path | str) -> dict[str, str]:
        return cli_environment(self.api_prefix, self.api_key, home)

    @property
    def health_url_template(self) -> str:
        where = urlsplit(self.api_prefix)
        return health_url_template(where.hostname or "127.0.0.1", where.port or 80)


@dataclass(frozen=True)
class LocalCloudflare:
    """The local Cloudflare API (engine.CloudflareEndpoint)."""

    base_url: str
    api_token: str = DEFAULT_API_TOKEN


def service_environment(home: Path, marker: Mapping[str, str]) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        **marker,
    }


def start_emulator(
    name: str,
    module: str,
    arguments: Sequence[str],
    *,
    logs: Path,
    home: Path,
    marker: Mapping[str, str],
) -> tuple[Recorded, str]:
    """Start `python -m <module>`; returns it and the value of its first line."""
    out = logs / f"{name}.out"
    with out.open("wb") as stdout, (logs / f"{name}.log").open("ab") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *arguments],
            cwd=REPO_ROOT,
            env=service_environment(home, marker),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    record = Recorded.of(name, process)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        text = out.read_text(encoding="utf-8", errors="replace")
        if "\n" in text:
            _, _, value = text.split("\n", 1)[0].partition("=")
            return record, value.strip()
        if process.poll() is not None:
            break
        time.sleep(0.05)
    record.stop()
    raise ServiceError(f"the local {name} API did not start (see {logs / f'{name}.log'})")


def start_phala(
    timings: PhalaTimings, request_log: Path, *, logs: Path, home: Path, marker: Mapping[str, str]
) -> tuple[Recorded, LocalPhala]:
    record, prefix = start_emulator(
        "phala",
        "emulators.phala",
        [*timings.arguments(), f"--request-log={request_log}"],
        logs=logs,
        home=home,
        marker=marker,
    )
    return record, LocalPhala(prefix)


def start_cloudflare(
    account_id: str, request_log: Path, *, logs: Path, home: Path, marker: Mapping[str, str]
) -> tuple[Recorded, LocalCloudflare]:
    record, base_url = start_emulator(
        "cloudflare",
        "emulators.cloudflare",
        [f"--account-id={account_id}", f"--request-log={request_log}"],
        logs=logs,
        home=home,
        marker=marker,
    )
    return record, LocalCloudflare(base_url)


# ----- reading the request logs ------------------------------------------------------------


def is_write(service: str, entry: Mapping[str, object]) -> bool:
    method = str(entry.get("method"))
    if method == "GET":
        return False
    return not (service == "phala" and (method, entry.get("path")) in PHALA_READS)


def count_lines(path: Path) -> int:
    return len(read_json_lines(path))

"""The emulators as processes of their own (`python -m emulators.phala`, `python -m
emulators.cloudflare`), as the sandbox runs them: each says where it listens on its first
line, writes every call it answers to a JSON-lines request log without a header or body
(so never a credential), and stops on SIGTERM. The Phala one also answers for each CVM's
published services (emulators/phala/published.py), which the driver's health checks use."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.cloudflare import DEFAULT_API_TOKEN
from emulators.phala import DEFAULT_API_KEY, STATUS_STOPPED, PhalaCloudEmulator
from emulators.request_log import read_json_lines
from sandbox.processes import stop_group
from tests.support.emulator_seed import seed_cvm

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "0123456789abcdef0123456789abcdef"
COMPOSE = "services:\n  app:\n    image: nginx\n    ports: ['8080:80']\n"


def _start(tmp_path: Path, module: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _call(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> Any:
    request = urllib.request.Request(  # noqa: S310 - loopback only
        url,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


def _wait_for_lines(path: Path, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        entries = read_json_lines(path)
        if len(entries) >= count:
            return entries
        time.sleep(0.02)
    return read_json_lines(path)


@pytest.fixture
def phala_process(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    log = tmp_path / "phala.jsonl"
    process, line = _start(tmp_path, "emulators.phala", f"--request-log={log}", "--boot-seconds=0")
    try:
        yield line, log, process
    finally:
        stop_group(process)


def test_the_phala_emulator_says_where_it_listens_and_logs_each_call_without_the_key(
    phala_process: tuple[str, Path, subprocess.Popen[str]],
) -> None:
    line, log, process = phala_process
    name, _, prefix = line.partition("=")
    assert name == "PHALA_CLOUD_API_PREFIX"
    assert prefix.startswith("http://127.0.0.1:") and prefix.endswith("/api/v1")
    headers = {"X-API-Key": DEFAULT_API_KEY}
    provision = _call(
        f"{prefix}/cvms/provision",
        "POST",
        {
            "name": "logged-cvm",
            "instance_type": "tdx.small",
            "compose_file": {"docker_compose_file": COMPOSE, "allowed_envs": []},
        },
        headers,
    )
    _call(
        f"{prefix}/cvms",
        "POST",
        {"app_id": provision["app_id"], "compose_hash": provision["compose_hash"]},
        headers,
    )
    entries = _wait_for_lines(log, 2)
    assert [(e["method"], e["path"], e["status"], e["cvm"]) for e in entries] == [
        ("POST", "/cvms/provision", 200, "logged-cvm"),
        ("POST", "/cvms", 200, "logged-cvm"),
    ]
    assert DEFAULT_API_KEY not in log.read_text()
    assert "docker_compose_file" not in log.read_text()  # no body
    stop_group(process)
    assert process.returncode == 0  # SIGTERM ends it cleanly


def test_the_cloudflare_emulator_says_where_it_listens_and_logs_each_call_without_the_token(
    tmp_path: Path,
) -> None:
    log = tmp_path / "cloudflare.jsonl"
    process, line = _start(
        tmp_path, "emulators.cloudflare", f"--account-id={ACCOUNT}", f"--request-log={log}"
    )
    try:
        name, _, base_url = line.partition("=")
        assert name == "CLOUDFLARE_BASE_URL"
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/client/v4/")
        auth = {"Authorization": f"Bearer {DEFAULT_API_TOKEN}"}
        _call(f"{base_url}accounts/{ACCOUNT}/r2/buckets", "POST", {"name": "logged-bucket"}, auth)
        with pytest.raises(urllib.error.HTTPError):
            _call(f"{base_url}accounts/{ACCOUNT}/r2/buckets/absent", headers=auth)
        entries = _wait_for_lines(log, 2)
        assert [(e["method"], e["path"], e["status"], e["name"]) for e in entries] == [
            ("POST", f"/accounts/{ACCOUNT}/r2/buckets", 200, "logged-bucket"),
            ("GET", f"/accounts/{ACCOUNT}/r2/buckets/absent", 404, None),
        ]
        assert DEFAULT_API_TOKEN not in log.read_text()
    finally:
        stop_group(process)
    assert process.returncode == 0


def _published(emulator: PhalaCloudEmulator, app_id: str) -> tuple[int, Any]:
    url = emulator.health_url_template.format(app_id=app_id)
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_running_cvms_published_services_answer_and_a_stopped_or_unknown_ones_do_not() -> None:
    with PhalaCloudEmulator() as emulator:
        cvm = seed_cvm(emulator, "published-cvm", COMPOSE)
        assert _published(emulator, cvm.app_id) == (200, {"ok": True})
        assert _published(emulator, f"app_{cvm.app_id}")[0] == 200  # either id form
        emulator.set_status(cvm.app_id, STATUS_STOPPED)
        assert _published(emulator, cvm.app_id)[0] == 502
        assert _published(emulator, "0" * 40)[0] == 502
        # Not API calls: the request log holds none of them.
        assert not any(record.path.startswith("/published") for record in emulator.request_log)

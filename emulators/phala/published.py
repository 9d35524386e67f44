"""What a CVM's published services answer, for health checks run against the emulator.

On Phala Cloud, a CVM's published port is reached through the dstack gateway at
`https://<app_id>-<port>.<base_domain>/`: it answers once the CVM's containers run. The
emulator runs no container, so it stands in for them at
`/published/<app_id>/<anything>` on its own address: a running CVM answers 200 with
`{"ok": true}` (what the mux's /health says, and an HTTP answer is all a gateway's check
asks for), anything else 502 as a gateway does when nothing answers behind it. The
driver's health check reaches it through `OPENCLAW_PHALA_HEALTH_URL_OVERRIDE` (read by the
driver only, never an input), which the sandbox sets to `health_url_template()`.
Calls here are not API calls: they are not in the request log.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from emulators.phala.backend import PhalaBackend
from emulators.phala.models import STATUS_RUNNING

PUBLISHED_PATH_PREFIX = "/published/"


def health_url_template(host: str, port: int) -> str:
    """The driver's health URL template ({app_id} filled by the driver) for this emulator."""
    return f"http://{host}:{port}{PUBLISHED_PATH_PREFIX}{{app_id}}/health"


def published_answer(backend: PhalaBackend, path: str) -> tuple[int, dict[str, Any]]:
    """(status, body) for a GET of `/published/<app_id>/...`."""
    app_id = path[len(PUBLISHED_PATH_PREFIX) :].split("/", 1)[0].removeprefix("app_")
    with backend.lock:
        running = any(
            cvm.app_id == app_id and cvm.status == STATUS_RUNNING and not cvm.deleted
            for cvm in backend.visible()
        )
    if running:
        return HTTPStatus.OK, {"ok": True}
    return HTTPStatus.BAD_GATEWAY, {"detail": f"no running CVM with app id {app_id!r}"}

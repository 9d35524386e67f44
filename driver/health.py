"""The health check after a CVM runs: its URL answers as the role expects."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from driver import cvm_state, protocol
from driver.errors import DriverError
from driver.spec import HealthCheck


def probe(url: str, expect: str) -> tuple[bool, str]:
    request = urllib.request.Request(url, headers={"User-Agent": "openclaw-phala-driver"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status, body = response.status, response.read(65536)
    except urllib.error.HTTPError as error:
        status, body = error.code, b""
    except (urllib.error.URLError, OSError, ValueError) as error:
        return False, f"{type(error).__name__}: {error}"
    if expect == protocol.HEALTH_EXPECT_JSON_OK:
        try:
            ok = status == 200 and json.loads(body).get("ok") is True
        except (ValueError, AttributeError):
            ok = False
        return ok, f"HTTP {status}"
    return status < 500, f"HTTP {status}"


def health_url(check: HealthCheck, cvm: Mapping[str, Any]) -> str:
    try:
        return check.url_template.format(
            app_id=cvm_state.bare_app_id(str(cvm.get("app_id", ""))),
            base_domain=cvm_state.base_domain(cvm),
        )
    except (KeyError, IndexError, ValueError) as error:
        raise DriverError(
            f"{protocol.HEALTH_URL_TEMPLATE} may use only {{app_id}} and {{base_domain}}: {error!r}"
        ) from None


def wait_healthy(
    name: str,
    url: str,
    expect: str,
    timeout_seconds: int,
    poll_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    deadline = time.monotonic() + timeout_seconds
    last = "no answer yet"
    while True:
        healthy, last = probe(url, expect)
        if healthy:
            return
        if time.monotonic() >= deadline:
            raise DriverError(
                f"CVM {name} is running but {url} did not answer as expected "
                f"within {timeout_seconds}s (last: {last})"
            )
        sleep(poll_seconds)

"""Fixtures shared by the ops tests."""

from __future__ import annotations

import pytest

_PROXY_VARIABLES = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
)


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fakes listen on 127.0.0.1; a proxy from the developer's shell must not
    # sit in between.
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)

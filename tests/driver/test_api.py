"""Read-only calls to the Phala API: ids, credentials, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driver.api import (
    DEFAULT_API_PREFIX,
    PhalaApi,
    PhalaApiError,
    normalize_cvm_id,
    phala_credentials,
)

# --------------------------------------------------------------------------- normalize_cvm_id


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d"),
        ("0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d", "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d"),
        ("ab" * 20, "app_" + "ab" * 20),
        ("app_" + "ab" * 20, "app_" + "ab" * 20),
        ("alice-gateway", "alice-gateway"),
        ("1042", "1042"),
    ],
)
def test_normalize_cvm_id_matches_what_the_cli_sends(given: str, sent: str) -> None:
    assert normalize_cvm_id(given) == sent


# --------------------------------------------------------------------------- phala_credentials


def write_credentials(directory: Path, token: str, api_prefix: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "credentials.json").write_text(
        json.dumps(
            {
                "schema_version": 1,
                "current_profile": "team",
                "profiles": {
                    "other": {"token": "phak_other", "api_prefix": "https://other/api/v1"},
                    "team": {"token": token, "api_prefix": api_prefix},
                },
            }
        )
    )


def test_phala_credentials_env_key_and_prefix_win_over_the_login_profile(tmp_path: Path) -> None:
    write_credentials(tmp_path / ".phala-cloud", "phak_profile", "https://profile/api/v1")

    key, prefix = phala_credentials(
        {
            "HOME": str(tmp_path),
            "PHALA_CLOUD_API_KEY": "phak_env",
            "PHALA_CLOUD_API_PREFIX": " http://127.0.0.1:9/api/v1/ ",
        }
    )

    assert (key, prefix) == ("phak_env", "http://127.0.0.1:9/api/v1")


def test_phala_credentials_fall_back_to_the_current_login_profile(tmp_path: Path) -> None:
    write_credentials(tmp_path / "custom-dir", "phak_profile", "https://profile/api/v1/")

    key, prefix = phala_credentials(
        {"HOME": str(tmp_path / "elsewhere"), "PHALA_CLOUD_DIR": str(tmp_path / "custom-dir")}
    )

    assert (key, prefix) == ("phak_profile", "https://profile/api/v1")


def test_phala_credentials_without_anything_give_no_key_and_the_public_api(
    tmp_path: Path,
) -> None:
    (tmp_path / ".phala-cloud").mkdir()
    (tmp_path / ".phala-cloud" / "credentials.json").write_text("{not json")

    assert phala_credentials({"HOME": str(tmp_path)}) == (
        None,
        DEFAULT_API_PREFIX,
    )


# --- PhalaApi against a canned local server ----------------------------------


class _CannedApi:
    """A tiny HTTP server on 127.0.0.1 that answers every GET with one JSON body."""

    def __init__(self, status: int, body: dict) -> None:
        import http.server
        import threading

        status_code, payload = status, json.dumps(body).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v1"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_app_whose_cvm_was_deleted_is_not_adoptable() -> None:
    listing = {
        "dstack_apps": [
            {"app_id": "a" * 40, "name": "alice-agent", "current_cvm": None},
            {"app_id": "b" * 40, "name": "other", "current_cvm": {"name": "alice-agent-2"}},
        ],
        "total_pages": 1,
    }
    with _CannedApi(200, listing) as prefix:
        assert PhalaApi("key", prefix).cvms_named("alice-agent") == []


def test_a_rejected_api_key_says_where_to_set_it() -> None:
    with _CannedApi(401, {"detail": "Invalid API key"}) as prefix:
        api = PhalaApi("wrong-key", prefix)
        with pytest.raises(PhalaApiError) as info:
            api.get_cvm("alice-agent")
    assert "HTTP 401: Invalid API key" in str(info.value)
    assert "PHALA_CLOUD_API_KEY" in str(info.value)
    assert "wrong-key" not in str(info.value)

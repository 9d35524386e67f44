"""Running the pinned phala CLI: its output and how values reach it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from driver.cli import DEFAULT_CLI, extract_json, option

# --------------------------------------------------------------------------- extract_json


def test_extract_json_skips_the_progress_line_and_trailing_text() -> None:
    text = 'Provisioning CVM x...\n{"success": true, "nested": {"a": 1}}\ntrailing {'

    assert extract_json(text) == {"success": True, "nested": {"a": 1}}


def test_extract_json_without_an_object_raises_value_error() -> None:
    with pytest.raises(ValueError, match="no JSON object"):
        extract_json("✗ CVM not found\n")


def _parse_with_real_cli(tmp_path: Path, *args: str) -> str:
    """What the pinned phala CLI answers to argv; its API is an unused local port."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PHALA_DISABLE_UPDATE_CHECK": "1",
        "PHALA_CLOUD_API_PREFIX": "http://127.0.0.1:9/api/v1",
        "PHALA_CLOUD_API_KEY": "not-a-real-key",
    }
    completed = subprocess.run(
        [str(DEFAULT_CLI), *args],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return completed.stdout + completed.stderr


def test_a_value_starting_with_a_dash_reaches_the_phala_cli_as_a_value(tmp_path: Path) -> None:
    # A separate word starting with '-' is read as an option by the CLI's parser...
    separate = _parse_with_real_cli(tmp_path, "cvms", "delete", "-abc", "--force", "--json")
    assert "unknown or unexpected option" in separate
    # ...so the driver attaches every value to its option.
    attached = _parse_with_real_cli(
        tmp_path, "cvms", "delete", option("cvm-id", "-abc"), "--force", "--json"
    )
    assert "unknown or unexpected option" not in attached
    deploy = _parse_with_real_cli(
        tmp_path,
        "deploy",
        option("cvm-id", "-abc"),
        option("compose", "-missing-compose.yml"),
        "--json",
    )
    assert "Docker compose file not found: -missing-compose.yml" in deploy

from __future__ import annotations

from components.settings import RawConfig, parse_settings
from plan.placeholders import placeholder, with_placeholders

SECURE = {"secure": "v1:abc:def"}


def _parse(config: dict, secret_keys: list[str]) -> object:
    import json

    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    return parse_settings(RawConfig(values, frozenset(secret_keys)))


def test_encrypted_values_become_placeholders_and_validate() -> None:
    stack = {
        "openclawImage": "repo/img@sha256:" + "a" * 64,
        "phalaDevOs": False,
        "tenants": [{"name": "alice-agent", "storage": "local"}],
        "tenantSecrets": {"alice-agent": {"masterKey": SECURE}},
        "redpillApiKey": SECURE,
        "muxName": "openclaw-mux",
        "muxImage": "repo/mux@sha256:" + "b" * 64,
        "muxChannels": ["discord"],
        "muxRegisterKey": SECURE,
        "muxAdminToken": SECURE,
    }
    config, secret_keys = with_placeholders(stack)
    assert config["tenantSecrets"]["alice-agent"]["masterKey"] == placeholder(
        "tenantSecrets.alice-agent.masterKey"
    )
    assert config["muxDiscordBotToken"] == placeholder("muxDiscordBotToken")
    assert "muxMasterKey" not in config  # explicit keys are set, nothing to derive
    settings = _parse(config, secret_keys)
    assert settings.tenants[0].name == "alice-agent"


def test_missing_required_secrets_are_filled_in() -> None:
    stack = {
        "openclawImage": "repo/img@sha256:" + "a" * 64,
        "phalaDevOs": False,
        "tenants": [{"name": "alice-agent", "storage": "local"}],
        "muxName": "openclaw-mux",
        "muxImage": "repo/mux@sha256:" + "b" * 64,
        "muxChannels": ["telegram"],
    }
    config, secret_keys = with_placeholders(stack)
    assert set(secret_keys) == {
        "tenantSecrets",
        "redpillApiKey",
        "muxMasterKey",
        "muxTelegramBotToken",
    }
    _parse(config, secret_keys)


def test_placeholders_are_distinct_and_long_enough() -> None:
    # The same in every interpreter: tests/test_determinism.py.
    assert placeholder("a") != placeholder("b")
    assert len(placeholder("a")) >= 32

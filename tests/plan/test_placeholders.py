from __future__ import annotations

import json

import pytest

from components.config_parser import parse_settings
from components.settings import RawConfig, Settings, SettingsError
from plan.placeholders import NOT_SET_MARK, placeholder, with_placeholders

SECURE = {"secure": "v1:abc:def"}


def _parse(config: dict, secret_keys: list[str]) -> Settings:
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    return parse_settings(RawConfig(values, frozenset(secret_keys)))


def _stack_without_secrets() -> dict:
    return {
        "openclawImage": "repo/img@sha256:" + "a" * 64,
        "phalaDevOs": False,
        "tenants": [{"name": "alice-agent", "storage": "local"}],
        "muxName": "openclaw-mux",
        "muxImage": "repo/mux@sha256:" + "b" * 64,
        "muxChannels": ["telegram"],
    }


def test_encrypted_values_become_placeholders_and_validate() -> None:
    stack = {
        **_stack_without_secrets(),
        "tenantSecrets": {"alice-agent": {"masterKey": SECURE}},
        "redpillApiKey": SECURE,
        "muxChannels": ["discord"],
        "muxRegisterKey": SECURE,
        "muxAdminToken": SECURE,
        "muxDiscordBotToken": SECURE,
    }
    offline = with_placeholders(stack)
    config = offline.config
    assert config["tenantSecrets"]["alice-agent"]["masterKey"] == placeholder(
        "tenantSecrets.alice-agent.masterKey", SECURE["secure"]
    )
    assert "muxMasterKey" not in config  # explicit keys are set, nothing to derive
    assert offline.not_set == []
    settings = _parse(config, offline.secret_keys)
    assert settings.tenants[0].name == "alice-agent"


def test_no_secret_is_made_up_so_the_settings_check_names_each_missing_one() -> None:
    offline = with_placeholders(_stack_without_secrets())
    assert offline.not_set == []
    assert not {"tenantSecrets", "redpillApiKey", "muxMasterKey"} & set(offline.config)
    with pytest.raises(SettingsError) as raised:
        _parse(offline.config, offline.secret_keys)
    message = str(raised.value)
    assert "tenantSecrets.alice-agent.masterKey: is missing" in message
    assert "muxTelegramBotToken: is required" in message
    assert "muxRegisterKey: is required unless muxMasterKey is set" in message


def test_stand_ins_for_missing_secrets_are_asked_for_and_each_is_listed() -> None:
    offline = with_placeholders(_stack_without_secrets(), stand_in_missing=True)
    assert offline.not_set == [
        "tenantSecrets.alice-agent.masterKey",
        "redpillApiKey",
        "muxMasterKey",
        "muxTelegramBotToken",
    ]
    assert offline.config["muxMasterKey"].startswith(NOT_SET_MARK)
    assert offline.config["tenantSecrets"]["alice-agent"]["masterKey"].startswith(NOT_SET_MARK)
    _parse(offline.config, offline.secret_keys)


def test_a_set_secret_is_not_listed_as_missing() -> None:
    stack = {**_stack_without_secrets(), "muxTelegramBotToken": SECURE, "redpillApiKey": SECURE}
    offline = with_placeholders(stack, stand_in_missing=True)
    assert offline.not_set == ["tenantSecrets.alice-agent.masterKey", "muxMasterKey"]


def test_placeholders_are_distinct_per_path_and_ciphertext_and_long_enough() -> None:
    # The same in every interpreter: tests/test_determinism.py.
    assert placeholder("a", "v1:x") != placeholder("b", "v1:x")
    assert placeholder("a", "v1:x") != placeholder("a", "v1:y")
    assert len(placeholder("a")) >= 32


def test_stand_ins_leave_a_tenant_secret_that_is_not_an_object_for_the_program_to_name() -> None:
    # `config set --secret --path tenantSecrets.<t>` without `.masterKey`: one value.
    stack = {**_stack_without_secrets(), "tenantSecrets": {"alice-agent": SECURE}}
    offline = with_placeholders(stack, stand_in_missing=True)
    assert "tenantSecrets.alice-agent.masterKey" not in offline.not_set
    with pytest.raises(SettingsError) as raised:
        _parse(offline.config, offline.secret_keys)
    assert "tenantSecrets.alice-agent: must be an object with masterKey" in str(raised.value)


def test_stand_ins_do_not_make_a_plaintext_secret_secret_so_the_program_refuses_it() -> None:
    stack = {**_stack_without_secrets(), "redpillApiKey": "sk-plaintext-in-the-stack-file"}
    offline = with_placeholders(stack, stand_in_missing=True)
    assert "redpillApiKey" not in offline.not_set
    assert "redpillApiKey" not in offline.secret_keys
    with pytest.raises(SettingsError) as raised:
        _parse(offline.config, offline.secret_keys)
    assert "openclaw-phala:redpillApiKey:" in str(raised.value)
    assert "sk-plaintext-in-the-stack-file" not in str(raised.value)

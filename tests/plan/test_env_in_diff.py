"""Every env variable the program can give a CVM shows in the offline plan's diff when
its source changes: plain values with old and new value, secrets as "changed" only."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from components import r2
from components.cvm_env import S3Credentials, mux_env, tenant_env
from driver import protocol
from plan.__main__ import blocks_for
from plan.describe import FINGERPRINT_KEY_ENV
from plan.diff import diff_plans, env_changes, render_diff
from plan.placeholders import with_placeholders

TENANT = "alice-agent"
MUX = "openclaw-mux"


def _secure(text: str) -> dict[str, str]:
    return {"secure": f"v1:{text}"}


# A stack file's config (keys without namespace) where every variable is set: an s3
# tenant that joins a mux deployed here, the mux with every optional secret.
BASE: dict[str, Any] = {
    "cloudflareAccountId": "0123456789abcdef0123456789abcdef",
    "openclawImage": "repo/openclaw@sha256:" + "a" * 64,
    "muxImage": "repo/mux@sha256:" + "b" * 64,
    "phalaDevOs": False,
    "redpillApiKey": _secure("redpill"),
    "tenants": [{"name": TENANT, "storage": "s3"}],
    "tenantSecrets": {TENANT: {"masterKey": _secure("master")}},
    "muxName": MUX,
    "muxChannels": ["telegram", "discord"],
    "muxTelegramBotUsername": "example_bot",
    "muxMasterKey": _secure("mux-master"),
    "muxRegisterKey": _secure("register"),
    "muxAdminToken": _secure("admin"),
    "muxJwtPrivateKey": _secure("jwt"),
    "muxTelegramBotToken": _secure("telegram"),
    "muxDiscordBotToken": _secure("discord"),
}

Change = Callable[[dict[str, Any], pytest.MonkeyPatch], None]


def _tenant(config: dict[str, Any]) -> dict[str, Any]:
    tenant: dict[str, Any] = config["tenants"][0]
    return tenant


# Variable -> a change of its source: the stack config, or for the two constants of
# the program, its code.
SOURCES: dict[str, Change] = {
    "MASTER_KEY": lambda c, _: c["tenantSecrets"][TENANT].update(masterKey=_secure("new")),
    "REDPILL_API_KEY": lambda c, _: c.update(redpillApiKey=_secure("new")),
    "S3_BUCKET": lambda c, _: _tenant(c).update(bucket="another-bucket"),
    "S3_PREFIX": lambda c, _: _tenant(c).update(s3Prefix="moved/prefix"),
    "S3_ENDPOINT": lambda c, _: _tenant(c).update(jurisdiction="eu"),
    "S3_PROVIDER": lambda _, m: m.setattr(r2, "S3_PROVIDER", "Other"),
    "S3_REGION": lambda _, m: m.setattr(r2, "S3_REGION", "us-east-1"),
    # A token in another account is a new token, with new credentials.
    "AWS_ACCESS_KEY_ID": lambda c, _: c.update(cloudflareAccountId="f" * 32),
    "AWS_SECRET_ACCESS_KEY": lambda c, _: c.update(cloudflareAccountId="f" * 32),
    # The bootstrap config carries the mux's URL, which follows the mux's name.
    "OPENCLAW_CONFIG_B64": lambda c, _: c.update(muxName="another-mux"),
    "MUX_REGISTER_KEY": lambda c, _: c.update(muxRegisterKey=_secure("new")),
    "MUX_ADMIN_TOKEN": lambda c, _: c.update(muxAdminToken=_secure("new")),
    "MUX_JWT_PRIVATE_KEY_B64": lambda c, _: c.update(muxJwtPrivateKey=_secure("new")),
    "TELEGRAM_BOT_TOKEN": lambda c, _: c.update(muxTelegramBotToken=_secure("new")),
    "DISCORD_BOT_TOKEN": lambda c, _: c.update(muxDiscordBotToken=_secure("new")),
    "MUX_TELEGRAM_BOT_USERNAME": lambda c, _: c.update(muxTelegramBotUsername="other_bot"),
}


def every_variable_the_program_sets() -> dict[str, str]:
    """Variable -> CVM role, from the program's own env rendering with every option on."""
    s3 = S3Credentials("bucket", "prefix", "endpoint", "key-id", "key-secret")
    tenant = tenant_env("master", "redpill", s3, "bootstrap")
    mux = mux_env("register", "admin", "jwt-key-b64", "telegram", "discord", "username")
    return {**dict.fromkeys(tenant.values, "openclaw"), **dict.fromkeys(mux.values, "mux")}


def _plan(config: dict[str, Any]) -> list[dict[str, Any]]:
    offline = with_placeholders(config)
    return blocks_for(offline.config, offline.secret_keys, "prod")


@pytest.fixture(scope="module")
def base_plan() -> list[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FINGERPRINT_KEY_ENV, "11" * 32)
        return _plan(copy.deepcopy(BASE))


def test_every_variable_the_program_sets_has_a_source_change_here() -> None:
    assert set(SOURCES) == set(every_variable_the_program_sets())


@pytest.mark.parametrize("variable", sorted(every_variable_the_program_sets()))
def test_a_change_of_the_variables_source_shows_in_the_diff(
    variable: str, base_plan: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FINGERPRINT_KEY_ENV, "11" * 32)
    config = copy.deepcopy(BASE)
    SOURCES[variable](config, monkeypatch)
    head = _plan(config)
    role = every_variable_the_program_sets()[variable]

    def cvm(plan: list[dict[str, Any]]) -> dict[str, Any]:
        (block,) = [b for b in plan if b["kind"] == "cvm" and b["role"] == role]
        return block

    old, new = cvm(base_plan), cvm(head)
    assert env_changes(old["env"], new["env"]).get(variable) == "changed"
    text = render_diff(diff_plans(base_plan, head), "prod", "base", "head")
    (line,) = [line for line in text.splitlines() if line.startswith(f"  env {variable}:")]
    secret = any(e["name"] == variable and e.get("secret") for e in new["env"])
    if secret:
        assert line == f"  env {variable}: changed (secret: value not shown)"
    else:
        assert "->" in line
    assert "placeholder-" not in text and "v1:" not in text


def test_an_unchanged_stack_shows_no_env_change(base_plan: list[dict[str, Any]]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FINGERPRINT_KEY_ENV, "11" * 32)
        again = _plan(copy.deepcopy(BASE))
    assert diff_plans(base_plan, again) == []


def test_secret_fingerprints_need_the_diffs_key_and_differ_per_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def master_key_entry() -> dict[str, Any]:
        (block,) = [b for b in _plan(copy.deepcopy(BASE)) if b.get("role") == "openclaw"]
        (entry,) = [e for e in block["env"] if e["name"] == "MASTER_KEY"]
        return entry

    monkeypatch.delenv(FINGERPRINT_KEY_ENV, raising=False)
    assert master_key_entry() == {"name": "MASTER_KEY", "secret": True}
    monkeypatch.setenv(FINGERPRINT_KEY_ENV, "11" * 32)
    first = master_key_entry()["fingerprint"]
    monkeypatch.setenv(FINGERPRINT_KEY_ENV, "22" * 32)
    assert master_key_entry()["fingerprint"] != first


def test_a_driver_input_without_a_field_of_its_own_still_shows_in_the_diff(
    base_plan: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FINGERPRINT_KEY_ENV, "11" * 32)
    head = _plan({**copy.deepcopy(BASE), "phalaWaitTimeoutSeconds": 900})
    text = render_diff(diff_plans(base_plan, head), "prod", "base", "head")
    assert "~ update cvm/alice-agent" in text
    assert "  driver WAIT_TIMEOUT_SECONDS: '600' -> '900'" in text


def test_a_base_plan_from_before_env_values_compares_by_name_only() -> None:
    old = ["MASTER_KEY (secret)", "S3_PREFIX", "S3_BUCKET"]
    new = [
        {"name": "MASTER_KEY", "secret": True, "fingerprint": "ab"},
        {"name": "S3_PREFIX", "value": "openclaw-data"},
        {"name": "S3_REGION", "value": "auto"},
    ]
    assert env_changes(old, new) == {"S3_BUCKET": "removed", "S3_REGION": "added"}


def test_a_changed_driver_command_shows_in_the_diff(
    base_plan: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FINGERPRINT_KEY_ENV, "11" * 32)
    monkeypatch.setattr(protocol, "UPDATE_COMMAND", "python3 -I driver/phala_cvm.py update")
    text = render_diff(diff_plans(base_plan, _plan(copy.deepcopy(BASE))), "prod", "b", "h")
    assert "~ update cvm/alice-agent" in text and "~ update cvm/openclaw-mux" in text
    assert "  driver update: 'python3 -I -S driver/phala_cvm.py update' -> " in text

"""Pulumi.yaml and the example stack files agree with what the program reads."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from components.config_keys import OBJECT_KEYS, SCALAR_KEYS, TENANT_SECRETS_KEY

REPO = Path(__file__).resolve().parents[1]


def test_pulumi_yaml_declares_every_scalar_key_with_its_type_and_default() -> None:
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    declared = project["config"]
    assert set(declared) == {key.name for key in SCALAR_KEYS}
    for key in SCALAR_KEYS:
        entry = declared[key.name]
        assert entry["type"] == key.type, key.name
        assert entry["default"] == key.default, key.name
        assert entry["description"], key.name
        if key.type == "array":
            assert entry["items"] == {"type": "string"}


def test_pulumi_yaml_documents_the_object_keys() -> None:
    text = (REPO / "Pulumi.yaml").read_text()
    for key in OBJECT_KEYS:
        assert f"#   {key}:" in text


def test_project_runs_python_from_the_repo_venv() -> None:
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert project["name"] == "openclaw-phala"
    assert project["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": ".venv"},
    }


EXAMPLE_STACK_FILES = {"Pulumi.prod.yaml", "Pulumi.mux.yaml", "Pulumi.tenants.yaml"}
SECRET_NAMES = {key.name for key in SCALAR_KEYS if key.secret} | {TENANT_SECRETS_KEY}


def _encrypted(value: Any) -> bool:
    """Every leaf is `{secure: ...}` (`pulumi config set --secret [--path]` writes that)."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return True
    if isinstance(value, dict) and value:
        return all(_encrypted(item) for item in value.values())
    if isinstance(value, list) and value:
        return all(_encrypted(item) for item in value)
    return False


def plaintext_secrets(config: Mapping[str, Any]) -> list[str]:
    """The config keys of secret settings that hold anything unencrypted."""
    return [
        full_key
        for full_key, value in config.items()
        if full_key.split(":", 1)[-1].split(".", 1)[0] in SECRET_NAMES and not _encrypted(value)
    ]


def test_plaintext_check_flags_every_unencrypted_secret_and_accepts_encrypted_ones() -> None:
    config = {
        "openclaw-phala:muxMasterKey": "plain-text-key",
        "openclaw-phala:redpillApiKey": {"secure": "v1:abc"},
        "openclaw-phala:tenantSecrets": {"alice": {"masterKey": {"secure": "v1:def"}}},
        "openclaw-phala:tenantSecrets.bob.masterKey": "plain-via-a-path-key",
        "openclaw-phala:muxDiscordBotToken": {"token": "plain-inside-an-object"},
        "openclaw-phala:tenants": [{"name": "alice"}],
        "openclaw-phala:muxName": "openclaw-mux",
    }
    assert plaintext_secrets(config) == [
        "openclaw-phala:muxMasterKey",
        "openclaw-phala:tenantSecrets.bob.masterKey",
        "openclaw-phala:muxDiscordBotToken",
    ]


def test_example_stack_files_hold_no_plaintext_secret() -> None:
    stack_files = {path.name: path for path in REPO.glob("Pulumi.*.yaml")}
    assert set(stack_files) >= EXAMPLE_STACK_FILES  # a renamed file is not skipped silently
    for name, path in sorted(stack_files.items()):
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        assert config, name
        assert plaintext_secrets(config) == [], name


def test_pulumi_yaml_describes_each_key_as_the_code_does() -> None:
    """One description per key: Pulumi.yaml's (what `pulumi config` shows) is the one in
    components/config_keys.py, so a changed meaning cannot be updated in one place only."""
    declared = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["config"]
    for key in SCALAR_KEYS:
        if key.name in DESCRIBED_ELSEWHERE_FOR_NOW:
            continue
        assert declared[key.name]["description"] == key.description, key.name


# The mux JWT keys' meaning is being changed by issue 22 (both files); the lead drops this
# exclusion when merging it, and the test then holds for every key.
DESCRIBED_ELSEWHERE_FOR_NOW = frozenset({"muxMasterKey", "muxJwtPrivateKey"})


def test_pulumi_yaml_describes_each_object_field_as_the_code_does() -> None:
    from components.config_keys import TENANT_FIELDS, TENANT_SECRET_FIELDS

    comments = [
        line.removeprefix("#").strip()
        for line in (REPO / "Pulumi.yaml").read_text().splitlines()
        if line.startswith("#     ")
    ]
    documented = dict(line.split(": ", 1) for line in comments)
    assert documented == {**TENANT_FIELDS, **TENANT_SECRET_FIELDS}

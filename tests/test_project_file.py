"""Pulumi.yaml and the example stack files agree with what the program reads."""

from __future__ import annotations

from pathlib import Path

import yaml

from components.settings import OBJECT_KEYS, SCALAR_KEYS

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


def test_example_stack_files_hold_no_plaintext_secret_keys() -> None:
    secret_names = {key.name for key in SCALAR_KEYS if key.secret} | {"tenantSecrets"}
    for stack_file in REPO.glob("Pulumi.*.yaml"):
        config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
        for full_key, value in config.items():
            name = full_key.split(":", 1)[-1].split(".", 1)[0]
            if name in secret_names:
                assert isinstance(value, dict) and "secure" in value, (stack_file.name, full_key)

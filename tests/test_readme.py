"""The README keeps telling a new user the truth about config, commands and CI."""

from __future__ import annotations

from pathlib import Path

from components.settings import SCALAR_KEYS, TENANT_FIELDS, TENANT_SECRET_FIELDS

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_every_config_key_and_tenant_field_is_documented() -> None:
    for key in SCALAR_KEYS:
        assert f"| `{key.name}` |" in README, key.name
    for name in TENANT_FIELDS:
        assert f"| `{name}` |" in README, name
    for name in TENANT_SECRET_FIELDS:
        assert f"`{name}`" in README, name


def test_the_documented_test_command_is_what_ci_runs() -> None:
    assert "```sh\n./scripts/test\n```" in README
    ci = (REPO / ".ci" / "run").read_text()
    assert "exec ./scripts/test\n" in ci


def test_the_documented_stack_files_exist() -> None:
    for stack in ("prod", "mux", "tenants"):
        assert f"Pulumi.{stack}.yaml" in README
        assert (REPO / f"Pulumi.{stack}.yaml").exists()

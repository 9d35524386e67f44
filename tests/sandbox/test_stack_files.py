"""An operator's stack file as the rehearsal takes it: bounded, parsed as data, and only
with a secrets provider that works offline (the passphrase, given as for `pulumi`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sandbox.stack_files import (
    MAX_STACK_FILE_BYTES,
    StackFileError,
    read_stack_document,
    rehearsal_copy,
    secrets_provider_problem,
)

SECURE = {"openclaw-phala:redpillApiKey": {"secure": "v1:abc"}}


def test_a_passphrase_stack_needs_the_passphrase_as_pulumi_does() -> None:
    document = {"encryptionsalt": "v1:salt", "config": SECURE}
    problem = secrets_provider_problem("Pulumi.prod.yaml", document, {})
    assert problem is not None and "PULUMI_CONFIG_PASSPHRASE" in problem
    assert secrets_provider_problem("f", document, {"PULUMI_CONFIG_PASSPHRASE": "p"}) is None
    assert secrets_provider_problem("f", document, {"PULUMI_CONFIG_PASSPHRASE_FILE": "/k"}) is None


@pytest.mark.parametrize(
    "provider",
    ["awskms://alias/ops?region=eu-west-1", "gcpkms://projects/p/keys/k", "hashivault://k"],
)
def test_a_cloud_kms_stack_is_refused_naming_its_provider(provider: str) -> None:
    document = {"secretsprovider": provider, "encryptedkey": "abc", "config": SECURE}
    problem = secrets_provider_problem(
        "Pulumi.prod.yaml", document, {"PULUMI_CONFIG_PASSPHRASE": "p"}
    )
    assert problem is not None
    assert problem.startswith(
        "Pulumi.prod.yaml uses the secrets provider " + provider.split("://")[0]
    )
    assert "offline" in problem


def test_secrets_of_the_pulumi_cloud_service_are_refused() -> None:
    problem = secrets_provider_problem("Pulumi.prod.yaml", {"config": SECURE}, {})
    assert problem is not None and "Pulumi Cloud service" in problem


def test_a_stack_without_secrets_needs_no_passphrase() -> None:
    document = {"config": {"openclaw-phala:muxName": "mux"}}
    assert secrets_provider_problem("f", document, {}) is None


def test_the_copy_leaves_out_the_cloudflare_providers_settings(tmp_path: Path) -> None:
    document = {
        "encryptionsalt": "v1:salt",
        "config": {"cloudflare:apiToken": {"secure": "v1:x"}, **SECURE},
    }
    text, dropped = rehearsal_copy(document)
    assert dropped == ["cloudflare:apiToken"]
    copied = yaml.safe_load(text)
    assert copied == {"encryptionsalt": "v1:salt", "config": SECURE}


def test_stack_files_are_bounded_and_read_as_data(tmp_path: Path) -> None:
    big = tmp_path / "Pulumi.big.yaml"
    big.write_bytes(b"#" * (MAX_STACK_FILE_BYTES + 1))
    with pytest.raises(StackFileError, match="larger than"):
        read_stack_document(big)
    listed = tmp_path / "Pulumi.list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(StackFileError, match="not a YAML mapping"):
        read_stack_document(listed)
    tagged = tmp_path / "Pulumi.tagged.yaml"
    tagged.write_text("config: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(StackFileError, match="not a YAML stack file"):
        read_stack_document(tagged)
    with pytest.raises(StackFileError, match="no such stack file"):
        read_stack_document(tmp_path / "Pulumi.absent.yaml")

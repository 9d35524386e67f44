"""An operator's stack file as the rehearsal takes it: read as bounded data, its secrets
provider checked, and copied without the provider settings that would reach a vendor.

Pulumi keeps a stack's secrets in its stack file, encrypted by the stack's secrets
provider: with the passphrase provider the file holds `encryptionsalt` and the engine needs
the passphrase (PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE, as for every
`pulumi` command); with a cloud KMS it holds `secretsprovider` (awskms://, gcpkms://,
azurekeyvault://, hashivault://) and `encryptedkey`; with the Pulumi Cloud service's own
provider it holds neither, and its `secure:` values can only be decrypted by that service.
The last two need a network the rehearsal does not use, so they are refused up front.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sandbox.vendor_guard import provider_settings

MAX_STACK_FILE_BYTES = 4 * 1024 * 1024
PASSPHRASE_VARS = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")


class StackFileError(ValueError):
    """The stack file cannot be rehearsed; the message names the file and why."""


def read_stack_document(path: Path, label: str | None = None) -> dict[str, Any]:
    label = label or str(path)
    if not path.is_file():
        raise StackFileError(f"{label}: no such stack file")
    if path.stat().st_size > MAX_STACK_FILE_BYTES:
        raise StackFileError(f"{label}: larger than {MAX_STACK_FILE_BYTES // 1024 // 1024} MiB")
    return parse_stack_document(path.read_bytes(), label)


def parse_stack_document(data: bytes, label: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        reason = type(error).__name__
        raise StackFileError(f"{label}: not a YAML stack file ({reason})") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise StackFileError(f"{label}: not a YAML mapping")
    return document


def holds_secure_values(node: Any) -> bool:
    if isinstance(node, Mapping):
        if set(node) == {"secure"}:
            return True
        return any(holds_secure_values(value) for value in node.values())
    if isinstance(node, list):
        return any(holds_secure_values(item) for item in node)
    return False


def secrets_provider_problem(
    label: str, document: Mapping[str, Any], environ: Mapping[str, str]
) -> str | None:
    """Why the rehearsal cannot decrypt this stack file's secrets offline, or None."""
    provider = str(document.get("secretsprovider") or "")
    if provider and not provider.startswith("passphrase"):
        scheme = provider.split("://", 1)[0]
        return (
            f"{label} uses the secrets provider {scheme}://…: a cloud KMS cannot be reached "
            "offline, so its secrets cannot be decrypted here. The rehearsal takes stacks whose "
            "secrets provider is the passphrase (PULUMI_CONFIG_PASSPHRASE or "
            "PULUMI_CONFIG_PASSPHRASE_FILE); rehearse a copy made with "
            "`pulumi stack change-secrets-provider passphrase`"
        )
    if document.get("encryptedkey"):
        return (
            f"{label} holds a data key encrypted by a cloud KMS (encryptedkey): it cannot be "
            "decrypted offline; the rehearsal takes passphrase stacks only"
        )
    if document.get("encryptionsalt"):
        if not any(environ.get(name) for name in PASSPHRASE_VARS):
            return (
                f"{label} is encrypted with a passphrase: set PULUMI_CONFIG_PASSPHRASE or "
                "PULUMI_CONFIG_PASSPHRASE_FILE, as for `pulumi` itself"
            )
        return None
    if holds_secure_values(document.get("config")):
        return (
            f"{label} holds secrets but no encryptionsalt: they were encrypted by the Pulumi "
            "Cloud service's secrets provider, which cannot be reached offline; the rehearsal "
            "takes passphrase stacks only"
        )
    return None


def rehearsal_copy(document: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The stack file's text for the rehearsal, and the provider settings left out (the
    local API's endpoint and token are used instead of them)."""
    dropped = provider_settings(document)
    copy = dict(document)
    if dropped:
        copy["config"] = {
            k: v for k, v in (document.get("config") or {}).items() if k not in dropped
        }
    return yaml.safe_dump(copy, sort_keys=False), dropped

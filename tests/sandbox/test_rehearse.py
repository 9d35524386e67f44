"""`./scripts/sandbox rehearse`: an operator's stack file and secrets (passphrase provider),
the stack as it runs today deployed into local APIs, then the change.

The change rehearsed is the one an image bump makes: a copy of Pulumi.prod.yaml, its
secrets set under the operator's passphrase, with another `openclawImage` digest. The
rehearsal must show the three tenants' deploys updated and nothing else: in the real
preview's own lines, and in the calls the Phala Cloud and Cloudflare APIs got.

The operator's machine here has "real" provider plugins in its plugin cache: the stand-in
scripts installed there under the real plugins' names (the real ones cannot be had on this
machine), so the rehearsal takes the real-plugin path (linked from the operator's cache);
the real plugins themselves never ran here.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.plugins import STANDIN_PROVIDERS
from tests.sandbox.conftest import MemoryPlace, run_sandbox
from tests.sandbox.operator_stack import operator_stack_file

PASSPHRASE = "operator-passphrase-for-the-rehearsal"
NEW_DIGEST = "c" * 64
TENANTS = ("alice-agent", "bob-agent", "staging-agent")
# A resource line of the engine's display: its op symbol, type, name and the op's word.
OPERATION = re.compile(
    r"^    \|\s+(\+-|[-+~])\s+(\S+:\S+)\s+(\S+)\s+(create|update|delete|replace)\b"
)
STANDINS = Path(__file__).resolve().parents[2] / "standins"


@dataclass(frozen=True)
class OperatorFiles:
    base: Path  # the stack file as it runs today
    changed: Path  # the same with the new image digest
    pulumi_home: Path  # the operator's plugin cache, with "real" plugins


@pytest.fixture(scope="module")
def operator(engine_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> OperatorFiles:
    scratch = tmp_path_factory.mktemp("operator")
    base = operator_stack_file(engine_dir, scratch, PASSPHRASE)
    text = base.read_text()
    changed_text, count = re.subn(
        r"(openclaw-cvm@sha256:)[0-9a-f]{64}", rf"\g<1>{NEW_DIGEST}", text
    )
    assert count == 1
    changed = scratch / "changed" / "Pulumi.prod.yaml"
    changed.parent.mkdir()
    changed.write_text(changed_text)
    home = scratch / "pulumi-home"
    for plugin in STANDIN_PROVIDERS:
        binary = home / "plugins" / plugin.cache_dir_name / plugin.binary_name
        binary.parent.mkdir(parents=True)
        binary.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{STANDINS / plugin.standin}" "$@"\n'
        )
        binary.chmod(0o755)
    return OperatorFiles(base, changed, home)


def test_an_image_bump_rehearsed_updates_exactly_the_three_tenants(
    memory_place: MemoryPlace, operator: OperatorFiles
) -> None:
    env = {
        **memory_place.env,
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_HOME": str(operator.pulumi_home),
    }
    run = run_sandbox(
        "rehearse",
        "--stack",
        "prod",
        "--stack-file",
        str(operator.changed),
        "--base-file",
        str(operator.base),
        env=env,
    )
    assert run.returncode == 0, run.text
    assert run.lines[0].startswith(
        "sandbox: real provider plugins: command 1.2.1 real (plugin cache"
    )

    # The real preview's lines, between its step and the next one.
    start = next(i for i, line in enumerate(run.lines) if "the real `pulumi preview`" in line)
    end = next(i for i, line in enumerate(run.lines) if "applying it: pulumi up" in line)
    preview = run.lines[start + 1 : end]
    operations = sorted(
        (m.group(4), m.group(2), m.group(3)) for m in map(OPERATION.match, preview) if m
    )
    assert operations == [
        ("update", "command:local:Command", f"{tenant}-deploy") for tenant in TENANTS
    ], "\n".join(preview)
    summary = [line.strip("| ").strip() for line in preview[preview.index("    | Resources:") :]]
    assert "~ 3 to update" in summary
    assert not any(re.search(r"to (create|delete|replace)", line) for line in summary)

    # What the change asked of the APIs: one update per tenant, nothing on Cloudflare.
    calls = run.lines[
        next(i for i, line in enumerate(run.lines) if "what the change asked" in line) :
    ]
    phala = next(line for line in calls if line.startswith("  Phala Cloud API"))
    assert phala.split(": ", 1)[1].startswith("3 writes")
    writes = sorted(
        (line.split()[0], line.rsplit("(", 1)[1].rstrip(")"))
        for line in calls
        if re.match(r"^    (POST|PATCH|PUT|DELETE) ", line)
    )
    assert writes == [("PATCH", tenant) for tenant in TENANTS]
    cloudflare = next(line for line in calls if line.startswith("  Cloudflare API"))
    assert cloudflare.split(": ", 1)[1].startswith("0 writes")

    # The outputs after: each tenant's compose hash moved, nothing else did.
    changed = [line.strip() for line in run.lines if line.startswith("    ~ ")]
    assert sorted(line.split(":")[0] for line in changed) == [
        f"~ tenants.{tenant}.composeHash" for tenant in TENANTS
    ]
    assert not any(line.startswith(("    + ", "    - ")) for line in run.lines)
    # Everything it started is gone with its folder.
    assert list(memory_place.root.glob("openclaw-phala-rehearse-*")) == []


def test_a_shell_holding_a_vendor_credential_or_endpoint_is_refused_before_anything_runs(
    memory_place: MemoryPlace, operator: OperatorFiles
) -> None:
    env = {
        **memory_place.env,
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PHALA_CLOUD_API_KEY": "phak_live_key_of_the_operator",
        "CLOUDFLARE_BASE_URL": "https://api.cloudflare.com/client/v4/",
    }
    run = run_sandbox("rehearse", "--stack", "prod", "--stack-file", str(operator.changed), env=env)
    assert run.returncode == 2, run.text
    assert "refusing to start" in run.text
    assert "PHALA_CLOUD_API_KEY is set" in run.text
    assert "CLOUDFLARE_BASE_URL points at api.cloudflare.com" in run.text
    assert "phak_live_key_of_the_operator" not in run.text
    assert not any("[rehearse" in line for line in run.lines)  # no step began
    assert list(memory_place.root.glob("openclaw-phala-rehearse-*")) == []
    up = run_sandbox("up", env={**memory_place.env, "PULUMI_BACKEND_URL": "s3://state"})
    assert up.returncode == 2 and "PULUMI_BACKEND_URL" in up.text
    assert not memory_place.sandbox_dir.exists()


def test_a_stack_whose_secrets_need_a_cloud_kms_is_refused_clearly(
    memory_place: MemoryPlace, operator: OperatorFiles, tmp_path: Path
) -> None:
    kms = tmp_path / "Pulumi.prod.yaml"
    kms.write_text(
        "secretsprovider: awskms://alias/pulumi-prod?region=eu-west-1\n"
        "encryptedkey: AQICAHh...\n"
        "config:\n  openclaw-phala:redpillApiKey:\n    secure: AAABAD...\n"
    )
    run = run_sandbox("rehearse", "--stack", "prod", "--stack-file", str(kms), env=memory_place.env)
    assert run.returncode == 2, run.text
    assert "uses the secrets provider awskms://" in run.text
    assert "cannot be reached offline" in run.text

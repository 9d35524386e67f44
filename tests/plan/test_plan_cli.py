"""The offline plan: golden output, determinism, and a diff between two git refs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from plan.__main__ import main
from plan.evaluate import REPO_ROOT

GOLDEN = Path(__file__).with_name("prod_plan.golden.txt")
# The example stack holds no secrets.
STAND_IN = "--stand-in-missing-secrets"


def run_plan(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env["PYTHONPATH"] = str(cwd if (cwd / "plan").exists() else REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "plan", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_prod_plan_matches_the_golden_file(capsys: pytest.CaptureFixture[str]) -> None:
    # Regenerate after an intended change:
    # python -m plan show --stack prod --stand-in-missing-secrets > <golden>
    assert main(["show", "--stack", "prod", STAND_IN]) == 0
    assert capsys.readouterr().out == GOLDEN.read_text()


def test_plan_is_identical_across_runs_and_directories(tmp_path: Path) -> None:
    first = run_plan("show", "--stack", "prod", STAND_IN, cwd=tmp_path)
    elsewhere = tmp_path / "a" / "b"
    elsewhere.mkdir(parents=True)
    second = run_plan("show", "--stack", "prod", STAND_IN, cwd=elsewhere)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout == GOLDEN.read_text()


def test_plan_shows_no_placeholder_or_secret_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "--stack", "prod", STAND_IN, "--json"]) == 0
    out = capsys.readouterr().out
    assert "placeholder-" not in out
    assert '"name": "MASTER_KEY",\n    "notSet": true,\n    "secret": true' in out
    assert '"fingerprint"' not in out  # only `plan diff` gives the key fingerprints need


def test_a_missing_secret_is_named_and_fails_the_plan_unless_stood_in_for(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["show", "--stack", "prod"]) == 1
    err = capsys.readouterr().err
    assert "tenantSecrets.alice-agent.masterKey: is missing" in err
    assert "muxTelegramBotToken: is required" in err
    # The example stack holds no secret at all: the message says how to plan it anyway.
    assert "holds no secrets at all" in err and "pass --stand-in-missing-secrets" in err
    assert err.count("plan: ") == 1, err  # one prefix
    assert main(["show", "--stack", "prod", STAND_IN]) == 0
    out = capsys.readouterr().out
    not_set = [line for line in out.splitlines() if line.startswith("secret ")]
    assert not_set == sorted(not_set) and len(not_set) == 7
    assert "7 secrets NOT SET in the stack file" in out
    assert "secret tenantSecrets.alice-agent.masterKey NOT SET" in not_set
    assert "secret muxTelegramBotToken NOT SET" in not_set
    assert "    MASTER_KEY (secret: NOT SET, the plan stands in for it)" in out
    assert "    TELEGRAM_BOT_TOKEN (secret: NOT SET, the plan stands in for it)" in out


def test_unknown_stack_fails_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "--stack", "nope"]) == 1
    assert "no stack file Pulumi.nope.yaml" in capsys.readouterr().err


def test_invalid_stack_config_fails_with_the_settings_message(tmp_path: Path) -> None:
    repo = _copy_project(tmp_path / "repo")
    stack_file = repo / "Pulumi.prod.yaml"
    stack_file.write_text(
        stack_file.read_text().replace("instanceType: tdx.large", "instanceTyp: x")
    )
    result = run_plan("show", "--stack", "prod", STAND_IN, cwd=repo)
    assert result.returncode == 1
    assert "tenants[1].instanceTyp (tenant bob-agent): unknown tenant field" in result.stderr
    assert "Traceback" not in result.stderr


def _copy_project(destination: Path) -> Path:
    """The working tree's tracked and new files (as CI would check them out)."""
    files = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in files:
        source = REPO_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
    )


def test_diff_between_two_refs_flags_replacements_and_local_data(tmp_path: Path) -> None:
    repo = _copy_project(tmp_path / "repo")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")

    stack_file = repo / "Pulumi.prod.yaml"
    document = yaml.safe_load(stack_file.read_text())
    tenants = document["config"]["openclaw-phala:tenants"]
    tenants[:] = [t for t in tenants if t["name"] != "alice-agent"]  # removed
    for tenant in tenants:
        if tenant["name"] == "bob-agent":
            tenant["instanceType"] = "tdx.xlarge"  # replaced; state is in R2
        if tenant["name"] == "staging-agent":
            tenant["instanceType"] = "tdx.medium"  # replaced; local data
    tenants.append({"name": "erin-agent"})  # added
    document["config"]["openclaw-phala:openclawImage"] = (
        "h4x3rotab/openclaw-cvm@sha256:" + "d" * 64
    )  # updated in place
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    _git(repo, "commit", "-qam", "head")

    result = run_plan("diff", "HEAD~1", "HEAD", "--stack", "prod", STAND_IN, cwd=repo)
    assert result.returncode == 0, result.stderr
    sections = {block.splitlines()[0]: block for block in result.stdout.split("\n## ")[1:]}
    alice = sections["tenant/alice-agent  [DELETES CVM]"]
    assert "- delete cvm/alice-agent" in alice
    assert "- delete bucket/openclaw-alice-agent" in alice
    assert "- delete token/openclaw-phala-openclaw-alice-agent-rw" in alice
    assert "is kept: its data is not deleted" in alice
    bob = sections["tenant/bob-agent  [REPLACES CVM]"]
    assert "+- replace cvm/bob-agent" in bob
    assert "  instanceType: 'tdx.large' -> 'tdx.xlarge'" in bob
    assert "+    image: h4x3rotab/openclaw-cvm@sha256:" + "d" * 64 in bob
    staging = sections[
        "tenant/staging-agent  [REPLACES CVM; TOUCHES LOCAL-VOLUME DATA; "
        "refused unless allowDataLoss is set]"
    ]
    assert "  instanceType: 'tdx.small' -> 'tdx.medium'" in staging
    assert "guard/" not in staging  # the guard is not replaced: it refuses deletion only
    assert "+ create cvm/erin-agent" in sections["tenant/erin-agent  [creates CVM]"]
    assert not any(title.startswith("mux/") for title in sections)

    as_json = run_plan("diff", "HEAD~1", "HEAD", "--stack", "prod", STAND_IN, "--json", cwd=repo)
    assert json.loads(as_json.stdout)["resources"] == {
        "alice-agent-storage-bucket": "delete",
        "alice-agent-deploy": "delete",
        "alice-agent-storage-token": "delete",
        "bob-agent-deploy": "replace",
        "erin-agent-storage-bucket": "create",
        "erin-agent-deploy": "create",
        "erin-agent-storage-token": "create",
        "staging-agent-deploy": "replace",
    }


def test_diff_shows_env_changes_values_for_plain_ones_and_only_changed_for_secrets(
    tmp_path: Path,
) -> None:
    repo = _copy_project(tmp_path / "repo")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    stack_file = repo / "Pulumi.prod.yaml"
    document = yaml.safe_load(stack_file.read_text())
    config = document["config"]
    for tenant in config["openclaw-phala:tenants"]:
        if tenant["name"] == "alice-agent":
            tenant["s3Prefix"] = "moved/prefix"  # only the CVM's env changes
    config["openclaw-phala:muxTelegramBotUsername"] = "another_example_bot"
    # A secret set: the plan sees only a new ciphertext, and says only "changed".
    secret_text = "v1:bm90LWEtcmVhbC1jaXBoZXJ0ZXh0"
    config["openclaw-phala:tenantSecrets"] = {
        "staging-agent": {"masterKey": {"secure": secret_text}}
    }
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    _git(repo, "commit", "-qam", "head")

    result = run_plan("diff", "HEAD~1", "HEAD", "--stack", "prod", STAND_IN, cwd=repo)
    assert result.returncode == 0, result.stderr
    sections = {block.splitlines()[0]: block for block in result.stdout.split("\n## ")[1:]}
    alice = sections["tenant/alice-agent"]
    assert "~ update cvm/alice-agent" in alice
    assert "  env S3_PREFIX: 'openclaw-data' -> 'moved/prefix'" in alice
    mux = sections["mux/openclaw-mux"]
    assert "  env MUX_TELEGRAM_BOT_USERNAME: 'openclaw_example_bot' -> 'another_example_bot'" in mux
    staging = sections["tenant/staging-agent"]
    assert "  env MASTER_KEY: changed (secret: value not shown)" in staging
    assert "bob-agent" not in result.stdout
    assert secret_text not in result.stdout and "placeholder-" not in result.stdout


def test_diff_of_identical_refs_reports_no_changes(tmp_path: Path) -> None:
    repo = _copy_project(tmp_path / "repo")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "only")
    result = run_plan("diff", "HEAD", "HEAD", "--stack", "prod", STAND_IN, cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "No changes to the desired state." in result.stdout


def test_diff_with_an_unknown_ref_fails_clearly(tmp_path: Path) -> None:
    repo = _copy_project(tmp_path / "repo")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "only")
    result = run_plan("diff", "no-such-ref", "HEAD", cwd=repo)
    assert result.returncode == 1
    assert "cannot read git ref 'no-such-ref'" in result.stderr


def _committed_copy(tmp_path: Path) -> Path:
    repo = _copy_project(tmp_path / "repo")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    return repo


def test_diff_without_a_head_compares_with_the_working_tree_edits_included(
    tmp_path: Path,
) -> None:
    # Before: only refs could be compared, so uncommitted edits showed "No changes".
    repo = _committed_copy(tmp_path)
    stack_file = repo / "Pulumi.prod.yaml"
    stack_file.write_text(stack_file.read_text().replace("tdx.large", "tdx.xlarge"))
    result = run_plan("diff", "HEAD", "--stack", "prod", STAND_IN, cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "stack prod, HEAD -> the working tree" in result.stdout
    assert "  instanceType: 'tdx.large' -> 'tdx.xlarge'" in result.stdout


def test_diff_prints_values_as_written_never_a_python_repr(tmp_path: Path) -> None:
    repo = _committed_copy(tmp_path)
    stack_file = repo / "Pulumi.prod.yaml"
    stack_file.write_text(stack_file.read_text() + "  openclaw-phala:phalaDiskSizeGb: 80\n")
    result = run_plan("diff", "HEAD", "--stack", "prod", STAND_IN, cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "  diskSizeGb: 40 -> 80" in result.stdout
    assert "40.0" not in result.stdout and "{'" not in result.stdout, result.stdout


def test_diff_handles_a_stack_file_added_or_removed_between_the_refs(tmp_path: Path) -> None:
    repo = _committed_copy(tmp_path)
    shutil.copy2(repo / "Pulumi.tenants.yaml", repo / "Pulumi.extra.yaml")
    _git(repo, "add", "Pulumi.extra.yaml")
    _git(repo, "commit", "-qm", "add a stack")
    added = run_plan("diff", "HEAD~1", "HEAD", "--stack", "extra", STAND_IN, cwd=repo)
    assert added.returncode == 0, added.stderr
    assert "there is no Pulumi.extra.yaml at HEAD~1: it plans as no resources" in added.stderr
    assert "+ create cvm/carol-agent" in added.stdout

    _git(repo, "rm", "-q", "Pulumi.extra.yaml")
    _git(repo, "commit", "-qm", "remove it")
    removed = run_plan("diff", "HEAD~1", "HEAD", "--stack", "extra", STAND_IN, cwd=repo)
    assert removed.returncode == 0, removed.stderr
    assert "- delete cvm/carol-agent" in removed.stdout
    # Every running tenant goes: the plan says `pulumi up` will refuse it.
    assert "!! REMOVES 2 OF 2 RUNNING TENANTS AT ONCE: carol-agent, dave-agent" in removed.stdout
    assert "`pulumi up` refuses this unless allowTenantRemoval lists them" in removed.stdout
    neither = run_plan("diff", "HEAD~2", "HEAD", "--stack", "extra", STAND_IN, cwd=repo)
    assert neither.returncode == 1
    assert neither.stderr.splitlines()[-1] == (
        "plan: no stack file Pulumi.extra.yaml at HEAD~2 or HEAD"
    )


def test_diff_shows_a_mass_removal_and_its_opt_in(tmp_path: Path) -> None:
    repo = _committed_copy(tmp_path)
    stack_file = repo / "Pulumi.prod.yaml"
    document = yaml.safe_load(stack_file.read_text())
    config = document["config"]
    config["openclaw-phala:tenants"] = config["openclaw-phala:tenants"][2:]
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    refused = run_plan("diff", "HEAD", "--stack", "prod", STAND_IN, cwd=repo)
    assert "!! REMOVES 2 OF 3 RUNNING TENANTS AT ONCE: alice-agent, bob-agent" in refused.stdout
    as_json = run_plan("diff", "HEAD", "--stack", "prod", STAND_IN, "--json", cwd=repo)
    assert json.loads(as_json.stdout)["tenantRemoval"] == {
        "removed": ["alice-agent", "bob-agent"],
        "running": 3,
        "refusedByPulumiUp": True,
    }
    config["openclaw-phala:allowTenantRemoval"] = ["alice-agent", "bob-agent"]
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    allowed = run_plan("diff", "HEAD", "--stack", "prod", STAND_IN, cwd=repo)
    assert "allowed for this run by allowTenantRemoval" in allowed.stdout


def test_a_failed_plan_at_a_ref_has_one_prefix(tmp_path: Path) -> None:
    repo = _committed_copy(tmp_path)
    stack_file = repo / "Pulumi.prod.yaml"
    stack_file.write_text(stack_file.read_text().replace("storage: local", "storage: tape"))
    result = run_plan("diff", "HEAD", "--stack", "prod", STAND_IN, cwd=repo)
    assert result.returncode == 1
    assert "plan: plan:" not in result.stderr
    assert result.stderr.startswith("plan: planning the working tree failed: stack prod:")

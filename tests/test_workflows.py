"""The GitHub Actions workflows: schema, security audit, and the properties we rely on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
VENV_BIN = Path(sys.executable).parent
DOCUMENTED_SECRETS = {
    "PULUMI_ACCESS_TOKEN",
    "CLOUDFLARE_API_TOKEN",
    "PHALA_CLOUD_API_KEY",
    "STATE_R2_ACCESS_KEY_ID",
    "STATE_R2_SECRET_ACCESS_KEY",
    "PULUMI_CONFIG_PASSPHRASE",
}
# What a pulumi step needs when the state is in an R2 bucket (README, "Working as a team").
STATE_IN_R2_ENV = {
    "PULUMI_BACKEND_URL": "${{ vars.PULUMI_BACKEND_URL }}",
    "AWS_ACCESS_KEY_ID": "${{ secrets.STATE_R2_ACCESS_KEY_ID }}",
    "AWS_SECRET_ACCESS_KEY": "${{ secrets.STATE_R2_SECRET_ACCESS_KEY }}",
    "PULUMI_CONFIG_PASSPHRASE": "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
}


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    # YAML 1.1 reads the bare key `on` as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def test_workflows_validate_against_the_github_schema() -> None:
    result = subprocess.run(
        [VENV_BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_pass_the_zizmor_security_audit() -> None:
    result = subprocess.run(
        [
            VENV_BIN / "zizmor",
            "--offline",
            "--config",
            REPO / ".github" / "zizmor.yml",
            REPO / ".github" / "workflows",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_default_token_permissions_are_read_only(path: Path) -> None:
    assert load(path.name)["permissions"] == {"contents": "read"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_only_documented_secrets_are_used(path: Path) -> None:
    used = set(re.findall(r"secrets\.([A-Z0-9_]+)", path.read_text())) - {"GITHUB_TOKEN"}
    assert used <= DOCUMENTED_SECRETS
    readme = (REPO / "README.md").read_text()
    for secret in used:
        assert f"`{secret}`" in readme, f"{secret} is not documented in the README"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_only_documented_variables_are_used(path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    for variable in set(re.findall(r"vars\.([A-Z0-9_]+)", path.read_text())):
        assert f"| `{variable}` | variable |" in readme, f"{variable} is not documented"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_pulumi_step_can_keep_the_state_in_pulumi_cloud_or_in_r2(path: Path) -> None:
    steps = [
        step
        for job in load(path.name)["jobs"].values()
        for step in job["steps"]
        if step.get("uses", "").startswith("pulumi/actions@")
    ]
    assert steps
    for step in steps:
        assert step["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
        assert STATE_IN_R2_ENV.items() <= step["env"].items()
        assert "cloud-url" not in step["with"]  # `pulumi login` then reads PULUMI_BACKEND_URL


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_untrusted_expression_is_interpolated_into_a_shell(path: Path) -> None:
    for job in load(path.name)["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step


def test_pull_requests_run_the_readme_test_command_and_an_offline_plan() -> None:
    jobs = load("pull-request.yml")["jobs"]
    assert any(step.get("run") == "./scripts/test" for step in jobs["test"]["steps"])
    plan_steps = "\n".join(step.get("run", "") for step in jobs["offline-plan"]["steps"])
    assert 'python -m plan diff "origin/${BASE_REF}" HEAD' in plan_steps
    assert "secrets." not in yaml.safe_dump(jobs["offline-plan"])  # works for forks


def test_preview_comments_on_the_pr_for_each_stack_but_skips_forks() -> None:
    preview = load("pull-request.yml")["jobs"]["preview"]
    assert "head.repo.full_name == github.repository" in preview["if"]
    assert preview["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert preview["strategy"]["matrix"]["stack"] == ["prod", "mux", "tenants"]
    (pulumi,) = [s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True
    assert "PHALA_CLOUD_API_KEY" not in pulumi["env"]  # preview runs no CVM commands


def test_up_runs_on_main_behind_approval_one_at_a_time_per_stack() -> None:
    workflow = load("deploy.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    groups = set()
    for job in workflow["jobs"].values():
        assert job["environment"] == "production"
        assert job["concurrency"]["cancel-in-progress"] is False
        groups.add(job["concurrency"]["group"])
        (pulumi,) = [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
        assert pulumi["with"]["command"] == "up"
        stack = pulumi["with"]["stack-name"].rsplit("/", 1)[-1]
        assert job["concurrency"]["group"] == f"pulumi-up-{stack}"
        assert any("npm ci" in step.get("run", "") for step in job["steps"])
    assert len(groups) == 3
    assert workflow["jobs"]["up-tenants"]["needs"] == "up-mux"

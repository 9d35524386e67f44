"""The README's "Working as a team" with the state in R2, run as written.

Its shell blocks are read from the README and run with bash, with only the placeholders
for the bucket and the account's endpoint filled in (the endpoint becomes the R2 front
on 127.0.0.1, HTTPS like R2, its CA given to Go by `SSL_CERT_FILE`), by an operator
whose environment holds the bucket token's id and value and the passphrase, nothing
else of the backend's: the block's exports, `pulumi login` and `pulumi stack init`
must do the rest.

Then CI deploys and previews with the environment the workflows give their pulumi step
in that mode (read from .github/workflows/*.yml, `${{ secrets.X }}` and `${{ vars.X }}`
filled in as GitHub does, unset ones empty), on a runner with a fresh `PULUMI_HOME`:
`pulumi --non-interactive login` without a URL, as pulumi/actions v7 runs it
(src/login.ts), then the command. The `pulumi/actions` code itself is not run.

Last, the stack is exported and restored into a new bucket with the README's commands.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import r2 as r2_rules
from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PASSPHRASE, REPO_ROOT, PulumiWorkspace, kill_group
from tests.support.engine_stacks import local_stack_config, write_requests
from tests.support.moto_server import MotoServer
from tests.support.r2_state import R2StateBucket, checkpoint_key, r2_state_bucket
from tests.support.secret_scan import scan_text
from tests.support.stack_configs import master_key_for

README = (REPO_ROOT / "README.md").read_text()
STACK = "organization/openclaw-phala/prod"
TENANTS = ("readme-agent",)
ENDPOINT_PLACEHOLDER = "<account>.r2.cloudflarestorage.com"
# What the README's blocks export themselves: never handed to them by the test.
EXPORTED_BY_THE_README = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_RESPONSE_CHECKSUM_VALIDATION",
)
# How each block is told apart.
BLOCK_MARKERS = {"setup": "<state-bucket>", "export": "stack export", "restore": "stack import"}


def team_blocks() -> dict[str, str]:
    """The shell blocks of "Working as a team", by what they do."""
    section = README.split("## Working as a team", 1)[1].split("\n## ", 1)[0]
    blocks = [
        "\n".join(line.removeprefix("  ") for line in block.splitlines())
        for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    ]
    found = {}
    for name, marker in BLOCK_MARKERS.items():
        (found[name],) = [block for block in blocks if marker in block]
    return found


def fill(block: str, r2: R2StateBucket, **buckets: str) -> str:
    assert ENDPOINT_PLACEHOLDER in block or "login" not in block, block
    block = block.replace(ENDPOINT_PLACEHOLDER, r2.front.host_port)
    for placeholder, bucket in buckets.items():
        assert f"<{placeholder}>" in block, placeholder
        block = block.replace(f"<{placeholder}>", bucket)
    return block


def exports_of(block: str) -> str:
    return "\n".join(line for line in block.splitlines() if line.startswith("export "))


def run_env(
    workspace: PulumiWorkspace, argv: list[str], env: Mapping[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run in the workspace's checkout with exactly `env`, killing the tree on timeout."""
    process = subprocess.Popen(
        argv,
        cwd=workspace.project_dir,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


@dataclass
class Team:
    operator: PulumiWorkspace
    phala: PhalaCloudEmulator
    r2: R2StateBucket
    root: Path
    engine_dir: Path

    def operator_shell(self, script: str) -> subprocess.CompletedProcess[str]:
        """The operator's shell: the token and the passphrase, and no backend yet."""
        env = self.operator.environment()
        for name in ("PULUMI_BACKEND_URL", *EXPORTED_BY_THE_README):
            env.pop(name)
        env["STATE_TOKEN_ID"] = self.r2.token_id
        env["STATE_TOKEN_VALUE"] = self.r2.token_value
        return run_env(self.operator, ["bash", "-euo", "pipefail", "-c", script], env)


@pytest.fixture(scope="module")
def team(
    engine_dir: Path, moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Team]:
    root = tmp_path_factory.mktemp("r2-readme")
    with (
        PhalaCloudEmulator(provision_seconds=0.2, update_seconds=0.2) as phala,
        r2_state_bucket(moto_server, root / "tls") as r2,
    ):
        operator = PulumiWorkspace(
            engine_dir,
            root / "operator",
            phala,
            backend_url=r2.login_url,
            extra_env=r2.credentials_env(),
        )
        try:
            yield Team(operator, phala, r2, root, engine_dir)
        finally:
            operator.close()


def test_the_readme_setup_runs_as_written_and_the_stack_deploys(team: Team) -> None:
    setup = fill(team_blocks()["setup"], team.r2, **{"state-bucket": team.r2.bucket})
    ran = team.operator_shell(setup)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "WARN" not in ran.stderr and "Warning" not in ran.stderr, ran.stderr
    stored = json.loads((team.operator.pulumi_home / "credentials.json").read_text())
    assert stored["current"] == team.r2.login_url
    assert "encryptionsalt" in yaml.safe_load(team.operator.stack_file(STACK).read_text())

    config, secret_keys = local_stack_config(TENANTS)
    team.operator.configure(STACK, config, secret_keys)
    team.operator.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()
    assert [c.name for c in team.phala.cvms()] == list(TENANTS)
    assert team.r2.resources("prod")
    bucket = "\n".join(body.decode(errors="replace") for body in team.r2.objects().values())
    secrets = {f"{t} masterKey": master_key_for(t) for t in TENANTS}
    assert scan_text("the state bucket", bucket, secrets) == []


def workflow_pulumi_step(workflow: str, job: str) -> dict[str, Any]:
    document = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / workflow).read_text())
    (step,) = [
        step
        for step in document["jobs"][job]["steps"]
        if step.get("uses", "").startswith("pulumi/actions@")
    ]
    return step


def as_github_fills(value: str, settings: Mapping[str, Mapping[str, str]]) -> str:
    """`${{ secrets.X }}`, `${{ vars.X }}`, `${{ matrix.x }}` as GitHub fills them: unset
    secrets and variables are empty."""

    def one(match: re.Match[str]) -> str:
        return settings[match.group(1)].get(match.group(2), "")

    return re.sub(r"\$\{\{ (secrets|vars|matrix)\.([A-Za-z0-9_]+) \}\}", one, value)


@pytest.mark.parametrize(
    ("workflow", "job"), [("deploy.yml", "up-prod"), ("pull-request.yml", "preview")]
)
def test_ci_runs_with_the_workflow_environment_for_state_in_r2(
    team: Team, workflow: str, job: str
) -> None:
    settings = {
        "vars": {"PULUMI_ORG": "organization", "PULUMI_BACKEND_URL": team.r2.login_url},
        "matrix": {"stack": "prod"},
        "secrets": {
            "STATE_R2_ACCESS_KEY_ID": team.r2.token_id,
            "STATE_R2_SECRET_ACCESS_KEY": r2_rules.s3_secret_access_key(team.r2.token_value),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PHALA_CLOUD_API_KEY": team.phala.api_key,
            "CLOUDFLARE_API_TOKEN": "not-used-by-a-stack-of-local-tenants",
            "GITHUB_TOKEN": "not-used-here",
        },
    }
    step = workflow_pulumi_step(workflow, job)
    stack = as_github_fills(step["with"]["stack-name"], settings)
    assert stack == STACK
    runner = PulumiWorkspace(
        team.engine_dir,
        team.root / f"runner-{job}",
        team.phala,
        extra_env={"SSL_CERT_FILE": str(team.r2.front.tls.ca_file)},  # R2's public CA, here
    )
    try:
        # The checkout: the committed stack file; a fresh PULUMI_HOME, never logged in.
        runner.stack_file(STACK).write_text(team.operator.stack_file(STACK).read_text())
        env = runner.environment()
        for name in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PHALA_CLOUD_API_KEY"):
            env.pop(name)
        env.update({name: as_github_fills(value, settings) for name, value in step["env"].items()})
        assert env["PULUMI_ACCESS_TOKEN"] == ""  # unset in this mode
        pulumi = str(runner.bin_dir / "pulumi")
        login = run_env(runner, [pulumi, "--non-interactive", "login"], env)
        assert login.returncode == 0, login.stdout + login.stderr
        assert f"({team.r2.login_url})" in login.stdout, login.stdout

        team.phala.clear_log()
        command = step["with"]["command"]
        extra = ["--yes"] if command == "up" else []
        ran = run_env(runner, [pulumi, command, "--non-interactive", *extra, "--stack", stack], env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "unchanged" in ran.stdout
        assert write_requests(team.phala) == []
    finally:
        runner.close()


def test_a_stack_exported_as_the_readme_says_is_restored_into_a_new_bucket(team: Team) -> None:
    blocks = team_blocks()
    exports = exports_of(blocks["setup"])
    exported = team.operator_shell(f"{exports}\n{blocks['export']}")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    export_file = team.operator.project_dir / "prod.state.json"
    saved = export_file.read_text()
    assert json.loads(saved)["deployment"]["resources"]
    secrets = {f"{t} masterKey": master_key_for(t) for t in TENANTS}
    assert scan_text("the exported stack", saved, secrets) == []

    new_bucket = team.r2.new_bucket()
    restore = fill(blocks["restore"], team.r2, **{"new-state-bucket": new_bucket})
    salt = yaml.safe_load(team.operator.stack_file(STACK).read_text())["encryptionsalt"]
    team.phala.clear_log()
    restored = team.operator_shell(f"{exports}\n{restore}")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert yaml.safe_load(team.operator.stack_file(STACK).read_text())["encryptionsalt"] == salt
    assert checkpoint_key("prod") in team.r2.keys(bucket=new_bucket)
    assert write_requests(team.phala) == []

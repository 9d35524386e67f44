"""How the real engine hands the program keys outside the project's namespace, and that
the program and the offline plan answer them alike: a key without a namespace is the
project's own; a mistyped namespace is refused with a did-you-mean."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from emulators.phala import PhalaCloudEmulator
from plan import evaluate
from plan.__main__ import main as plan_main
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import STACK, local_stack_config

TENANT = "local-agent-0"


@pytest.fixture
def configured(
    engine_dir: Path, emulator: PhalaCloudEmulator, tmp_path: Path
) -> Iterator[PulumiWorkspace]:
    workspace = PulumiWorkspace(engine_dir, tmp_path / "engine", emulator)
    try:
        workspace.init_stack(STACK)
        config, secret_keys = local_stack_config((TENANT,))
        workspace.configure(STACK, config, secret_keys)
        yield workspace
    finally:
        workspace.close()


def _add_raw_keys(workspace: PulumiWorkspace, keys: dict[str, object]) -> Path:
    path = workspace.stack_file(STACK)
    document = yaml.safe_load(path.read_text())
    document["config"].update(keys)
    path.write_text(yaml.safe_dump(document, sort_keys=True))
    return path


def _plan_of(stack_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> int:
    """`plan show` of that stack file, with the checkout's program."""
    planned = tmp_path / "plan-root"
    planned.mkdir()
    (planned / f"Pulumi.{STACK}.yaml").write_text(stack_file.read_text())
    # The plan reads the stack file as Pulumi does, with the project's declared keys.
    shutil.copy2(evaluate.REPO_ROOT / "Pulumi.yaml", planned / "Pulumi.yaml")
    monkeypatch.setattr(evaluate, "REPO_ROOT", planned)
    monkeypatch.setattr("plan.__main__.REPO_ROOT", planned)
    return plan_main(["show", "--stack", STACK, "--json"])


def test_a_key_without_a_namespace_reaches_the_program_as_the_projects_own(
    configured: PulumiWorkspace,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack_file = _add_raw_keys(configured, {"phalaDiskSizeGb": 41})
    preview = configured.run("preview", "--json", "--stack", STACK).expect_success()
    (deploy,) = [
        step for step in preview.json["steps"] if step["urn"].endswith(f"::{TENANT}-deploy")
    ]
    environment = deploy["newState"]["inputs"]["environment"]
    assert environment["OPENCLAW_PHALA_DISK_SIZE_GB"] == "41"
    capsys.readouterr()
    assert _plan_of(stack_file, monkeypatch, tmp_path) == 0
    assert '"diskSizeGb": 41' in capsys.readouterr().out


def test_a_mistyped_namespace_is_refused_alike_by_the_program_and_the_plan(
    configured: PulumiWorkspace,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack_file = _add_raw_keys(configured, {"openclaw_phala:phalaDiskSizeGb": 41})
    preview = configured.run("preview", "--stack", STACK)
    expected = (
        "openclaw_phala:phalaDiskSizeGb: is under namespace 'openclaw_phala', so the program "
        "never reads it; did you mean 'openclaw-phala:phalaDiskSizeGb'?"
    )
    assert preview.returncode != 0
    assert expected in preview.output
    capsys.readouterr()
    assert _plan_of(stack_file, monkeypatch, tmp_path) == 1
    assert expected in capsys.readouterr().err


@pytest.mark.parametrize(
    ("key", "where"),
    [
        ("openclaw:phalaDiskSizeGb", "is under namespace 'openclaw'"),
        ("phala:phalaDiskSizeGb", "is under namespace 'phala'"),
        (":phalaDiskSizeGb", "has an empty namespace"),
    ],
)
def test_our_key_under_any_other_namespace_is_refused_alike_by_the_program_and_the_plan(
    configured: PulumiWorkspace,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    key: str,
    where: str,
) -> None:
    # Before: these namespaces were too far from ours for the near-miss check, so the key
    # was dropped without a word (a `tenants` there planned zero tenants).
    stack_file = _add_raw_keys(configured, {key: 41})
    preview = configured.run("preview", "--stack", STACK)
    expected = (
        f"{key}: {where}, so the program never reads it; did you mean "
        "'openclaw-phala:phalaDiskSizeGb'?"
    )
    assert preview.returncode != 0
    assert expected in preview.output, preview.output
    capsys.readouterr()
    assert _plan_of(stack_file, monkeypatch, tmp_path) == 1
    assert expected in capsys.readouterr().err

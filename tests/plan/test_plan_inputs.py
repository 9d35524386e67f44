"""`plan show` on what a newcomer or a hostile file gives it (issue 24): every nesting
depth answered in one line, `secure: ''`, an empty file, encrypted structure named by its
path, namespaces, full stack names, `--help` with its defaults, and one `plan:` prefix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import plan.__main__ as plan_cli
import plan.evaluate as plan_evaluate
from plan.evaluate import REPO_ROOT
from tests.support.stack_configs import IMAGE

STACK = "bad"
VALID = (
    "config:\n"
    f"  openclaw-phala:openclawImage: {IMAGE}\n"
    "  openclaw-phala:phalaDevOs: false\n"
    "  openclaw-phala:redpillApiKey:\n    secure: v1:AAAA:BBBB\n"
    "  openclaw-phala:tenants:\n    - name: alice-agent\n      storage: local\n"
    "  openclaw-phala:tenantSecrets:\n    alice-agent:\n      masterKey:\n"
    "        secure: v1:AAAA:CCCC\n"
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy2(REPO_ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    monkeypatch.setattr(plan_cli, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(plan_evaluate, "REPO_ROOT", tmp_path)
    return tmp_path


def plan_of(project: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (project / f"Pulumi.{STACK}.yaml").write_text(text)
    status = plan_cli.main(["show", "--stack", STACK])
    return status, capsys.readouterr().err


def test_the_valid_file_plans(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_of(project, VALID, capsys) == (0, "")


@pytest.mark.parametrize("depth", [50, 99, 100, 101, 200, 333, 500, 700, 900, 1000, 3000, 10001])
def test_any_nesting_depth_is_read_or_refused_in_one_line_never_a_catch_all(
    project: Path, capsys: pytest.CaptureFixture[str], depth: int
) -> None:
    # Before: about 500 to 900 levels ended in "plan: unexpected RecursionError".
    nested = "[" * depth + "x" + "]" * depth
    for text in (
        VALID + f"  openclaw-phala:tenantSecrets2: {nested}\n",
        VALID.replace("storage: local\n", f"storage: local\n      s3Prefix: {nested}\n"),
        f"config:\n  aws:tags: {nested}\n",
    ):
        status, err = plan_of(project, text, capsys)
        assert status == 1, err
        assert "unexpected" not in err and "Traceback" not in err
        assert len(err.strip().splitlines()) <= 3, err
        if depth > 100:
            assert "nests collections more than 100 levels deep" in err
            assert "config.openclaw-phala:" in err or "config.aws:tags" in err, err


def test_an_empty_ciphertext_is_refused_naming_the_key(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = VALID.replace("secure: v1:AAAA:BBBB", "secure: ''")
    status, err = plan_of(project, text, capsys)
    assert status == 1
    assert "openclaw-phala:redpillApiKey: is `secure: ''`, an empty ciphertext" in err


@pytest.mark.parametrize("text", ["", "# nothing\n", "config:\n", "config: null\n", "config: {}\n"])
def test_an_empty_stack_file_gets_its_own_one_line_message(
    project: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    # Before: reported as a missing SSH key.
    status, err = plan_of(project, text, capsys)
    assert status == 1
    assert err == (
        f"plan: Pulumi.{STACK}.yaml: the stack sets no openclaw-phala config at all (an empty "
        "stack file, or `config:` empty or null): it would deploy nothing and remove whatever "
        "it runs; put the settings under config: (Pulumi.prod.yaml is a worked example)\n"
    )


def test_an_encrypted_tenant_name_is_named_by_its_path_without_placeholder_noise(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = VALID.replace("- name: alice-agent", "- name:\n        secure: v1:NAME:CIPHER")
    status, err = plan_of(project, text, capsys)
    assert status == 1
    assert "openclaw-phala:tenants[0].name: must be plain, not a secret" in err
    assert "placeholder" not in err, err


def test_an_encrypted_mux_name_is_refused_naming_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = VALID + "  openclaw-phala:muxName:\n    secure: v1:MUX:NAME\n"
    status, err = plan_of(project, text, capsys)
    assert status == 1
    assert "openclaw-phala:muxName: must be plain, not a secret" in err
    assert "placeholder" not in err, err


@pytest.mark.parametrize(
    ("key", "refused"),
    [
        ("openclaw:tenants", True),
        ("phala:muxName", True),
        (":tenants", True),
        ("cloudflare:tenants", False),
    ],
)
def test_our_key_under_another_namespace_is_refused_or_warned(
    project: Path, capsys: pytest.CaptureFixture[str], key: str, refused: bool
) -> None:
    status, err = plan_of(project, VALID + f"  '{key}': x\n", capsys)
    name = key.rpartition(":")[2]
    assert f"{key}: " in err and f"did you mean 'openclaw-phala:{name}'?" in err, err
    if refused:
        assert status == 1
    else:
        assert status == 0
        assert err.startswith(f"plan: warning: {key}: is under namespace 'cloudflare'")


@pytest.mark.parametrize("stack", ["prod", "organization/prod", "organization/openclaw-phala/prod"])
def test_a_full_stack_name_plans_the_stacks_file(
    capsys: pytest.CaptureFixture[str], stack: str
) -> None:
    assert plan_cli.main(["show", "--stack", stack, "--stand-in-missing-secrets"]) == 0
    assert capsys.readouterr().out.startswith("# openclaw-phala offline plan: stack prod\n")


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        ("org/other-project/prod", "names project 'other-project', not 'openclaw-phala'"),
        ("../../etc/passwd", "is not a stack name"),
        ("a/b/c/d", "is not a stack name"),
    ],
)
def test_a_stack_name_that_is_not_one_is_refused(
    capsys: pytest.CaptureFixture[str], stack: str, expected: str
) -> None:
    assert plan_cli.main(["show", "--stack", stack]) == 1
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_help_states_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("show", "diff"):
        with pytest.raises(SystemExit):
            plan_cli.main([command, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert "(default: prod)" in out
    assert "(default: the working tree)" in out

"""`python -m plan` never shows a traceback (issue 13, item 4).

Each bad stack file gives a message naming the key (or the line) and exit status 1;
an alias bomb fails fast; a reader that closes the pipe early ends the plan quietly
with one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import plan.__main__ as plan_cli
import plan.evaluate as plan_evaluate
from plan.evaluate import REPO_ROOT
from tests.support.stack_configs import IMAGE

STACK = "bad"
_VALID = (
    "config:\n"
    f"  openclaw-phala:openclawImage: {IMAGE}\n"
    "  openclaw-phala:phalaDevOs: false\n"
    "  openclaw-phala:redpillApiKey:\n    secure: v1:AAAA:BBBB\n"
    "  openclaw-phala:tenants:\n    - name: alice-agent\n      storage: local\n"
)
_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)

# (case, stack file, what stderr must say)
BAD_FILES = [
    ("yaml-syntax-error", "config:\n  openclaw-phala:muxName: [x\n", "invalid YAML: line"),
    ("top-level-list", "- config\n", "expected project to be an object, was '[]interface {}'"),
    ("config-as-a-list", "config:\n  - muxName\n", "config: must be a mapping"),
    ("non-string-top-level-key", "5: x\nconfig: {}\n", "expected only string keys, got"),
    ("non-string-config-key", "config:\n  5: x\n", "config: key '5' is not a string"),
    (
        "tenant-secrets-as-a-list",
        _VALID + "  openclaw-phala:tenantSecrets:\n    - secure: v1:AAAA:BBBB\n",
        "openclaw-phala:tenantSecrets: must be an object keyed by tenant name",
    ),
    (
        "tenant-secret-as-one-encrypted-value",
        _VALID + "  openclaw-phala:tenantSecrets:\n    alice-agent:\n      secure: v1:AAAA:BBBB\n",
        "openclaw-phala:tenantSecrets.alice-agent: must be an object with masterKey",
    ),
    (
        "mux-channels-a-number",
        _VALID + "  openclaw-phala:muxName: shared-mux\n  openclaw-phala:muxChannels: 5\n",
        "configuration key 'muxChannels' must be of type 'array<string>'",
    ),
    (
        "tenant-named-like-a-date",
        _VALID.replace("name: alice-agent", "name: 2024-01-01"),
        "tenants[0].name (tenant 2024-01-01 00:00:00 +0000 UTC): "
        "'2024-01-01 00:00:00 +0000 UTC' is not a valid CVM name",
    ),
    (
        "yaml-tag-that-does-not-fit",
        _VALID + "  openclaw-phala:phalaDiskSizeGb: !!int forty\n",
        "config.openclaw-phala:phalaDiskSizeGb: line 9: cannot decode !!str as a !!int",
    ),
    (
        "python-object-tag",
        _VALID + "  openclaw-phala:phalaRegion: !!python/object/apply:os.system [ls]\n",
        "configuration key 'phalaRegion' must be of type 'string'",
    ),
    ("alias-bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + _BOMB, "excessive aliasing"),
    (
        "plaintext-secret-key",
        _VALID.replace("redpillApiKey:\n    secure: v1:AAAA:BBBB", "redpillApiKey: rp-plain"),
        "openclaw-phala:redpillApiKey: holds a secret in plaintext; "
        "set it with: pulumi config set --secret redpillApiKey",
    ),
    (
        "plaintext-bot-token",
        _VALID
        + "  openclaw-phala:muxName: shared-mux\n"
        + "  openclaw-phala:muxImage: h4x3rotab/openclaw-mux@sha256:"
        + "b" * 64
        + "\n  openclaw-phala:muxChannels: [telegram]\n"
        + "  openclaw-phala:muxMasterKey:\n    secure: v1:AAAA:BBBB\n"
        + "  openclaw-phala:muxTelegramBotToken: 123:plain-token\n",
        "openclaw-phala:muxTelegramBotToken: holds a secret in plaintext; "
        "set it with: pulumi config set --secret muxTelegramBotToken",
    ),
    (
        "plaintext-leaf-in-an-encrypted-object",
        _VALID
        + "  openclaw-phala:tenantSecrets:\n    alice-agent:\n"
        + "      masterKey:\n        secure: v1:AAAA:BBBB\n      redpillApiKey: rp-plain\n",
        "openclaw-phala:tenantSecrets.alice-agent.redpillApiKey: holds a secret in plaintext; "
        "set it with: pulumi config set --secret --path "
        "'tenantSecrets.alice-agent.redpillApiKey' <value>",
    ),
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder the plan reads its stack files from."""
    shutil.copy2(REPO_ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    monkeypatch.setattr(plan_cli, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(plan_evaluate, "REPO_ROOT", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "expected"),
    [case[1:] for case in BAD_FILES],
    ids=[case[0] for case in BAD_FILES],
)
def test_bad_stack_file_is_one_line_naming_the_key_and_exit_1(
    project: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    (project / f"Pulumi.{STACK}.yaml").write_text(text)
    started = time.monotonic()
    assert plan_cli.main(["show", "--stack", STACK]) == 1
    elapsed = time.monotonic() - started
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [line for line in captured.err.splitlines() if expected in line]
    assert lines, captured.err
    assert "Traceback" not in captured.err
    if "excessive aliasing" in expected:
        assert elapsed < 30  # bounded: 10^8 aliased nodes would take far longer


def test_reader_errors_are_a_single_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / f"Pulumi.{STACK}.yaml").write_text("config:\n  a: 1\n  a: 2\n")
    assert plan_cli.main(["show", "--stack", STACK]) == 1
    assert capsys.readouterr().err == (
        f'plan: Pulumi.{STACK}.yaml: line 3: mapping key "a" already defined at line 2\n'
    )


def test_plan_show_into_a_closed_pipe_ends_with_one_line_and_no_traceback() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    process = subprocess.Popen(
        # The example stack holds no secrets; the flag stands in for them.
        [sys.executable, "-m", "plan", "show", "--stack", "prod", "--stand-in-missing-secrets"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the reader leaves before the plan is written, as `| head` does
        stderr = process.stderr.read()
        assert process.wait(timeout=300) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in stderr
    assert stderr == "plan: output closed before the plan was written (broken pipe)\n"


def test_a_value_that_does_not_fit_its_tag_is_not_echoed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = "rp-plaintext-secret-canary"
    (project / f"Pulumi.{STACK}.yaml").write_text(
        f"config:\n  openclaw-phala:redpillApiKey: !!int {canary}\n"
    )
    assert plan_cli.main(["show", "--stack", STACK]) == 1
    err = capsys.readouterr().err
    assert "openclaw-phala:redpillApiKey: line 2: cannot decode !!str as a !!int" in err
    assert canary not in err


def test_a_setting_outside_config_is_warned_with_a_did_you_mean_and_not_applied(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Pulumi drops top-level keys it does not know without a word; the plan says so.
    (project / f"Pulumi.{STACK}.yaml").write_text(
        _VALID + "muxName: shared-mux\nopenclaw-phala:phalaRegoin: us-west\nnotes: x\n"
    )
    assert plan_cli.main(["show", "--stack", STACK, "--stand-in-missing-secrets"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "plan: warning: top-level key 'muxName' is outside config:, so Pulumi ignores it; "
        "did you mean 'config: openclaw-phala:muxName'?",
        "plan: warning: top-level key 'notes' is outside config:, so Pulumi ignores it",
        "plan: warning: top-level key 'openclaw-phala:phalaRegoin' is outside config:, so "
        "Pulumi ignores it; did you mean 'config: openclaw-phala:phalaRegion'?",
    ]
    assert "shared-mux" not in captured.out  # the program never sees it, so no mux

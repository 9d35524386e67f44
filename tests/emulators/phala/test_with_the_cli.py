"""Runs the real `phala` CLI (node_modules/.bin/phala) against the local API emulator.

Each test gets its own emulator, an empty HOME (no ~/.ssh keys, no credentials) and a
working directory without phala.toml, so nothing on the developer's machine leaks in.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.phala import (
    API_VERSION_CURRENT,
    API_VERSION_LEGACY,
    STATUS_ERROR,
    STATUS_RUNNING,
    STATUS_STARTING,
    STATUS_STOPPED,
    AppEnvKeypair,
    PhalaCloudEmulator,
    compose_hash_of,
    published_ports,
)
from tests.support.emulator_seed import api_request, seed_cvm
from tests.support.phala_cli import PHALA_BIN, parse_json_from_output, run_phala

COMPOSE_V1 = 'services:\n  gateway:\n    image: nginx:1.27\n    ports:\n      - "18789:80"\n'
COMPOSE_V2 = 'services:\n  gateway:\n    image: nginx:1.28\n    ports:\n      - "18789:80"\n'
SSH_PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEmulatorTestKeyOnly test@emulator"
CLI_TIMEOUT_SECONDS = 60

# A dotenv file full of hostile values, and what the CLI's dotenv parser (a copy of
# dotenv 16's LINE regex) turns each line into. Values are compared byte-exact.
HOSTILE_ENV_LINES = [
    "PLAIN=hello world",
    "TRIMMED=   padded unquoted   ",
    "SQ_PADDED='  keep spaces  '",
    'DQ_PADDED="  keep spaces  "',
    "HASH_UNQUOTED=abc#not-a-value",
    "HASH_SINGLE_QUOTED='a # b'",
    'HASH_DOUBLE_QUOTED="a # b"',
    "DOLLARS=$HOME ${USER} $(id)",
    "EQUALS=a=b==c=",
    "BACKSLASHES=C:\\dir\\new\\t\\\\x",
    "SQ_LITERAL='lit \\n \" \\\\'",
    'DQ_ESCAPES="line1\\nline2\\tstays"',
    'DQ_ESCAPED_QUOTE="say \\"hi\\""',
    'INNER_QUOTES=it\'s "fine"',
    "BACKTICKED=`has ' and \" inside`",
    "UNICODE=héllo ✓ 日本語 🚀",
    "EMPTY=",
    'EMPTY_QUOTED=""',
    "export EXPORTED=yes",
    'MULTILINE_DQ="first\nsecond"',
    "DUPLICATE=first",
    "DUPLICATE=second",
    "# COMMENTED=never",
]
HOSTILE_ENV_EXPECTED = {
    "PLAIN": "hello world",
    "TRIMMED": "padded unquoted",
    "SQ_PADDED": "  keep spaces  ",
    "DQ_PADDED": "  keep spaces  ",
    "HASH_UNQUOTED": "abc",
    "HASH_SINGLE_QUOTED": "a # b",
    "HASH_DOUBLE_QUOTED": "a # b",
    "DOLLARS": "$HOME ${USER} $(id)",
    "EQUALS": "a=b==c=",
    "BACKSLASHES": "C:\\dir\\new\\t\\\\x",
    "SQ_LITERAL": 'lit \\n " \\\\',
    "DQ_ESCAPES": "line1\nline2\\tstays",
    "DQ_ESCAPED_QUOTE": 'say \\"hi\\"',
    "INNER_QUOTES": 'it\'s "fine"',
    "BACKTICKED": "has ' and \" inside",
    "UNICODE": "héllo ✓ 日本語 🚀",
    "EMPTY": "",
    "EMPTY_QUOTED": "",
    "EXPORTED": "yes",
    "MULTILINE_DQ": "first\nsecond",
    "DUPLICATE": "second",
}
# `-e KEY=VALUE` arguments are split at the first "=" and used verbatim: byte-exact.
ARGUMENT_ENV = {
    "ARG_EVERYTHING": "'\"`#$\\ =end ",
    "ARG_NEWLINE": "x\ny",
}

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def emulator() -> Iterator[PhalaCloudEmulator]:
    with PhalaCloudEmulator(provision_seconds=0.2, update_seconds=0.2) as running:
        yield running


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "compose.yml").write_text(COMPOSE_V1)
    (project / "compose-v2.yml").write_text(COMPOSE_V2)
    return project


@pytest.fixture
def cli(emulator: PhalaCloudEmulator, workdir: Path, tmp_path: Path) -> CliRunner:
    assert PHALA_BIN.exists(), f"phala CLI missing at {PHALA_BIN}; run npm ci"
    home = tmp_path / "home"
    env = emulator.cli_env(home)
    assert not (home / ".ssh").exists()
    assert not (workdir / "phala.toml").exists()

    def run(*args: str, timeout: float = CLI_TIMEOUT_SECONDS) -> subprocess.CompletedProcess[str]:
        return run_phala(list(args), env=env, cwd=workdir, timeout=timeout)

    return run


def deploy_new(cli: CliRunner, name: str, *extra: str) -> dict[str, Any]:
    result = cli("deploy", "-n", name, "-c", "compose.yml", "-t", "tdx.medium", *extra, "--json")
    assert result.returncode == 0, result.stderr
    return parse_json_from_output(result.stdout)


def wait_for_settled(emulator: PhalaCloudEmulator, name: str, timeout: float = 30.0) -> None:
    """Until the CVM runs with no operation in progress."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cvm = emulator.cvm_by_name(name)
        if cvm is not None and cvm.status == STATUS_RUNNING and not cvm.in_progress:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} did not settle")


def wait_for_status(
    emulator: PhalaCloudEmulator, name: str, status: str, timeout: float = 3.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cvm = emulator.cvm_by_name(name)
        if cvm is not None and cvm.status == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} did not reach {status}")


# ----- CLI end to end ----------------------------------------------------------------------


def test_create_decrypts_exactly_the_env_values_written(
    emulator: PhalaCloudEmulator, cli: CliRunner, workdir: Path
) -> None:
    (workdir / "env.file").write_text("\n".join(HOSTILE_ENV_LINES) + "\n", encoding="utf-8")
    # Boot takes far longer than the CLI can, however loaded the machine: the status
    # right after the create is `starting`, never a race with the boot timer.
    emulator.configure(boot=600)
    argument_flags = [flag for kv in ARGUMENT_ENV.items() for flag in ("-e", "=".join(kv))]

    result = cli(
        "deploy",
        *("-n", "hostile-env", "-c", "compose.yml", "-e", "env.file", *argument_flags),
        *("-t", "tdx.medium", "--no-dev-os", "--json"),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Provisioning CVM hostile-env...\n{")
    assert result.stderr == ""
    output = parse_json_from_output(result.stdout)
    cvm = emulator.cvm_by_name("hostile-env")
    assert cvm is not None
    assert output == {
        "success": True,
        "vm_uuid": cvm.vm_uuid,
        "name": "hostile-env",
        "app_id": cvm.app_id,
        "dashboard_url": f"https://cloud.phala.com/dashboard/cvms/{cvm.vm_uuid}",
    }
    expected = {**HOSTILE_ENV_EXPECTED, **ARGUMENT_ENV}
    decrypted = emulator.decrypted_env(cvm)
    assert decrypted == expected
    assert list(decrypted) == list(expected)  # file order, then -e order
    assert cvm.allowed_envs == list(expected)
    assert cvm.instance_type == "tdx.medium"
    assert (cvm.vcpu, cvm.memory_mb) == (2, 4096)
    assert cvm.prefer_dev is False
    assert cvm.status == STATUS_STARTING

    provision, commit = emulator.request_log
    assert (provision.method, provision.path) == ("POST", "/cvms/provision")
    assert (commit.method, commit.path) == ("POST", "/cvms")
    assert {provision.api_version, commit.api_version} == {API_VERSION_LEGACY}
    assert provision.body["prefer_dev"] is False
    assert commit.body["compose_hash"] == cvm.compose_hash
    assert commit.body["encrypted_env"] == cvm.encrypted_env  # logged as sent, still hex
    assert emulator.api_key not in repr(emulator.request_log)

    emulator.finish_pending("hostile-env")  # the long boot still ends as running
    wait_for_status(emulator, "hostile-env", STATUS_RUNNING)


def test_dev_os_with_ssh_pubkey_sends_prefer_dev_and_authorized_keys(
    emulator: PhalaCloudEmulator, cli: CliRunner, workdir: Path
) -> None:
    (workdir / "key.pub").write_text(SSH_PUBKEY + "\n")

    deploy_new(cli, "dev-image", "-e", "TOKEN=abc", "--dev-os", "--ssh-pubkey", "key.pub")

    provision = emulator.requests("POST", r"^/cvms/provision$")[0]
    assert provision.body["prefer_dev"] is True
    assert provision.body["compose_file"]["allowed_envs"] == ["TOKEN", "DSTACK_AUTHORIZED_KEYS"]
    cvm = emulator.cvm_by_name("dev-image")
    assert cvm is not None and cvm.prefer_dev is True
    # The CLI trims the key file; the key rides along as an ordinary encrypted env var.
    assert emulator.decrypted_env(cvm) == {"TOKEN": "abc", "DSTACK_AUTHORIZED_KEYS": SSH_PUBKEY}


def test_dev_os_without_any_key_fails_before_any_request(
    emulator: PhalaCloudEmulator, cli: CliRunner
) -> None:
    result = cli("deploy", "-n", "dev-no-key", "-c", "compose.yml", "--dev-os", "--json")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "SSH public key is required for dev images" in json.loads(result.stderr)["error"]
    assert emulator.count() == 0


def test_cvms_get_and_list_json_parse(emulator: PhalaCloudEmulator, cli: CliRunner) -> None:
    created = deploy_new(cli, "listed-app", "-e", "A=1", "--no-dev-os")
    wait_for_status(emulator, "listed-app", STATUS_RUNNING)

    got = cli("cvms", "get", created["vm_uuid"], "--json")
    listed = cli("cvms", "list", "--json")

    assert got.returncode == 0, got.stderr
    detail = json.loads(got.stdout)  # stdout is pure JSON: no spinner, no banner
    assert detail["success"] is True
    assert detail["status"] == STATUS_RUNNING
    assert detail["app_id"] == created["app_id"]
    assert detail["gateway"]["base_domain"] == emulator.gateway_base_domain
    assert detail["endpoints"] == [
        {
            "app": f"https://{created['app_id']}-18789.{emulator.gateway_base_domain}",
            "instance": f"https://{detail['instance_id']}-18789.{emulator.gateway_base_domain}",
        }
    ]
    assert detail["compose_hash"] == emulator.cvm_by_name("listed-app").compose_hash
    assert detail["kms_info"]["encrypted_env_pubkey"]
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {
        "success": True,
        "page": 1,
        "pageSize": 50,
        "total": 1,
        "totalPages": 1,
        "items": [
            {
                "appId": created["app_id"],
                "cvmName": "listed-app",
                "status": STATUS_RUNNING,
                "uptime": json.loads(listed.stdout)["items"][0]["uptime"],
            }
        ],
    }
    dashless_uuid = created["vm_uuid"].replace("-", "")
    assert emulator.count("GET", f"^/cvms/{dashless_uuid}$") == 1
    assert emulator.count("GET", r"^/apps$") == 1
    assert emulator.requests("POST", r"^/status/batch$")[0].body == {
        "vm_uuids": [created["vm_uuid"]]
    }


def test_the_clis_wait_ends_while_the_update_still_runs_and_the_env_lands_at_its_end(
    emulator: PhalaCloudEmulator, cli: CliRunner
) -> None:
    created = deploy_new(cli, "update-me", "-e", "KEEP=old", "-e", "DROP=x", "--no-dev-os")
    wait_for_settled(emulator, "update-me")
    before = emulator.cvm_by_name("update-me")
    emulator.clear_log()
    # After accepting the update the service says "running" (in progress) for a while;
    # the CLI's `--wait` looks only at the status, so it ends at once (phala@1.1.18).
    emulator.configure(update_grace=30)
    cvm_id = f"app_{created['app_id']}"

    result = cli("deploy", "--cvm-id", cvm_id, "-c", "compose-v2.yml", "-e", "KEEP=new", "--wait")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "CVM updated successfully!\n"
    assert f"Updating CVM {cvm_id}..." in result.stderr
    assert "status=running, in_progress=undefined" in result.stderr
    during = emulator.cvm_by_name("update-me")
    assert (during.status, during.in_progress) == (STATUS_RUNNING, True)
    assert during.compose_hash == before.compose_hash  # the hash changes when it settles
    assert emulator.decrypted_env(during) == {"KEEP": "old", "DROP": "x"}

    emulator.finish_pending("update-me")
    after = emulator.cvm_by_name("update-me")
    assert (after.status, after.in_progress, after.restarts) == (STATUS_RUNNING, False, 1)
    assert emulator.decrypted_env(after) == {"KEEP": "new"}  # env is replaced, not merged
    assert after.docker_compose_file == COMPOSE_V2
    assert after.compose_hash != before.compose_hash
    assert [revision.source for revision in after.revisions] == ["create", "update"]
    assert after.revisions[0].env == {"KEEP": "old", "DROP": "x"}
    methods_paths_versions = [(r.method, r.path, r.api_version) for r in emulator.request_log]
    assert methods_paths_versions[:2] == [
        ("GET", f"/cvms/{cvm_id}", API_VERSION_LEGACY),
        ("PATCH", f"/cvms/{cvm_id}", API_VERSION_LEGACY),
    ]
    polls = methods_paths_versions[2:]
    assert len(polls) >= 1
    assert set(polls) == {("GET", f"/cvms/{cvm_id}", API_VERSION_CURRENT)}
    assert set(emulator.requests("PATCH")[0].body) == {
        "docker_compose_file",
        "allowed_envs",
        "encrypted_env",
    }


def test_the_cli_fails_an_update_of_a_busy_cvm_without_retrying(
    emulator: PhalaCloudEmulator, cli: CliRunner
) -> None:
    deploy_new(cli, "busy-app", "--no-dev-os")
    wait_for_settled(emulator, "busy-app")
    emulator.configure(update_grace=30)
    first = cli("deploy", "--cvm-id", "busy-app", "-c", "compose-v2.yml", "--json")

    second = cli("deploy", "--cvm-id", "busy-app", "-c", "compose.yml", "--json")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 1
    assert "in progress" in json.loads(second.stderr or second.stdout)["error"]
    assert [r.status for r in emulator.requests("PATCH")] == [202, 409]


def test_update_json_output_and_no_env_keeps_env(
    emulator: PhalaCloudEmulator, cli: CliRunner, workdir: Path
) -> None:
    (workdir / "key.pub").write_text(SSH_PUBKEY)
    deploy_new(cli, "json-update", "-e", "A=1", "--ssh-pubkey", "key.pub")
    assert "DSTACK_AUTHORIZED_KEYS" in emulator.decrypted_env("json-update")

    wait_for_settled(emulator, "json-update")
    without_env = cli("deploy", "--cvm-id", "json-update", "-c", "compose-v2.yml", "--json")
    wait_for_settled(emulator, "json-update")
    kept = emulator.decrypted_env("json-update")
    with_env = cli(
        "deploy",
        *("--cvm-id", "json-update", "-c", "compose-v2.yml", "-e", "A=2"),
        *("--ssh-pubkey", "key.pub", "--dev-os", "--json"),
    )

    assert without_env.returncode == 0, without_env.stderr
    app_id = emulator.cvm_by_name("json-update").app_id
    assert json.loads(without_env.stdout) == {
        "success": True,
        "vm_uuid": "json-update",  # echoes the id given, not the real UUID
        "name": "json-update",
        "app_id": app_id,
        "dashboard_url": "https://cloud.phala.com/dashboard/cvms/json-update",
    }
    assert kept == {"A": "1", "DSTACK_AUTHORIZED_KEYS": SSH_PUBKEY}
    assert with_env.returncode == 0, with_env.stderr
    # Update mode ignores --ssh-pubkey/--dev-os: the authorized key silently disappears.
    wait_for_settled(emulator, "json-update")
    assert emulator.decrypted_env("json-update") == {"A": "2"}


def test_delete_with_force_then_delete_again_is_404(
    emulator: PhalaCloudEmulator, cli: CliRunner
) -> None:
    deploy_new(cli, "delete-me", "--no-dev-os")

    deleted = cli("cvms", "delete", "delete-me", "--force", "--json")
    again = cli("cvms", "delete", "delete-me", "--force")

    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {"success": True, "deleted": True, "cvm": "delete-me"}
    assert emulator.cvms() == []
    assert [(r.method, r.status) for r in emulator.requests(path_regex=r"^/cvms/delete-me$")] == [
        ("GET", 200),
        ("DELETE", 204),
        ("GET", 404),
    ]
    assert again.returncode == 1
    assert again.stderr == "✗ The requested CVM was not found: delete-me\n"


def test_wrong_api_key_fails_with_exit_1(emulator: PhalaCloudEmulator, workdir: Path) -> None:
    env = {**emulator.cli_env(workdir.parent / "home"), "PHALA_CLOUD_API_KEY": "phak_wrong"}

    result = run_phala(
        ["deploy", "-n", "wrong-key", "-c", "compose.yml", "--json"], env=env, cwd=workdir
    )

    assert result.returncode == 1
    assert result.stdout == "Provisioning CVM wrong-key...\n"
    assert json.loads(result.stderr) == {"success": False, "error": "Invalid API key"}
    assert emulator.requests()[0].status == 401
    assert "phak_wrong" not in repr(emulator.request_log)


def test_injected_500_makes_cli_exit_1_with_detail(
    emulator: PhalaCloudEmulator, cli: CliRunner
) -> None:
    emulator.inject_error("POST", r"^/cvms/provision$", status=500, detail="Teepod out of RAM")

    failed = cli("deploy", "-n", "server-error", "-c", "compose.yml", "--no-dev-os")
    retried = cli("deploy", "-n", "server-error", "-c", "compose.yml", "--no-dev-os")

    assert failed.returncode == 1
    assert "Teepod out of RAM" in failed.stderr
    assert failed.stderr.startswith("✗ Error in provisioning CVM: \nError: Teepod out of RAM\n")
    assert emulator.count("POST", r"^/cvms$") == 1  # only the second, successful deploy
    assert retried.returncode == 0, retried.stderr  # the fault fired exactly once


def test_injected_get_error_is_retried_once_by_the_cli(
    emulator: PhalaCloudEmulator, cli: CliRunner
) -> None:
    deploy_new(cli, "flaky-get", "--no-dev-os")
    emulator.inject_error("GET", r"^/cvms/flaky-get$", status=502, detail="bad gateway")

    recovered = cli("cvms", "get", "flaky-get", "--json")
    emulator.inject_error("GET", r"^/cvms/flaky-get$", status=503, detail="down", times=2)
    failed = cli("cvms", "get", "flaky-get", "--json")

    assert recovered.returncode == 0, recovered.stderr
    assert failed.returncode == 1
    assert json.loads(failed.stdout) == {"success": False, "error": "down"}
    statuses = [r.status for r in emulator.requests("GET", r"^/cvms/flaky-get$")]
    assert statuses == [502, 200, 503, 503]


def test_the_clis_wait_polls_on_through_a_long_stop(
    emulator: PhalaCloudEmulator, cli: CliRunner, workdir: Path, tmp_path: Path
) -> None:
    deploy_new(cli, "stuck-app", "--no-dev-os")
    wait_for_settled(emulator, "stuck-app")
    # The update's stop comes at once and lasts: the CVM shows "stopped" while in progress.
    emulator.configure(update_grace=0, stop=0, stopped=600)
    gets_before = emulator.count("GET", r"^/cvms/stuck-app$")

    # `--wait` on a CVM that does not run keeps polling: watch the polls arrive (however
    # slowly the CLI starts on a loaded machine) while the CLI is still waiting, then stop it.
    waiting = subprocess.Popen(
        [str(PHALA_BIN), "deploy", "--cvm-id", "stuck-app", "-c", "compose-v2.yml", "--wait"],
        env=emulator.cli_env(tmp_path / "home"),
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + CLI_TIMEOUT_SECONDS
        while emulator.count("GET", r"^/cvms/stuck-app$") < gets_before + 3:
            assert waiting.poll() is None, "the CLI stopped waiting on a stopped CVM"
            assert time.monotonic() < deadline, "the CLI never polled the stopped CVM"
            time.sleep(0.05)
        assert waiting.poll() is None  # still waiting after the info GET plus two polls
    finally:
        os.killpg(waiting.pid, signal.SIGKILL)
        waiting.wait()

    cvm = emulator.cvm_by_name("stuck-app")
    assert (cvm.status, cvm.in_progress) == (STATUS_STOPPED, True)


def test_failing_cvm_reports_error_status(emulator: PhalaCloudEmulator, cli: CliRunner) -> None:
    emulator.make_failing("doomed-app", boot_error="kernel panic")
    deploy_new(cli, "doomed-app", "--no-dev-os")
    wait_for_status(emulator, "doomed-app", STATUS_ERROR)

    result = cli("cvms", "get", "doomed-app", "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == STATUS_ERROR
    status, batch, _ = api_request(
        emulator,
        "POST",
        "/status/batch",
        body={"vm_uuids": [result_uuid(emulator, "doomed-app")]},
        version=API_VERSION_CURRENT,
    )
    assert status == 200
    assert next(iter(batch.values()))["boot_error"] == "kernel panic"


def result_uuid(emulator: PhalaCloudEmulator, name: str) -> str:
    cvm = emulator.cvm_by_name(name)
    assert cvm is not None
    return cvm.vm_uuid


def test_deleted_behind_our_back_and_external_compose_change(
    emulator: PhalaCloudEmulator, cli: CliRunner
) -> None:
    deploy_new(cli, "drifting-app", "-e", "A=1", "--no-dev-os")
    deploy_new(cli, "vanishing-app", "--no-dev-os")
    original_hash = emulator.cvm_by_name("drifting-app").compose_hash

    new_hash = emulator.change_compose_externally("drifting-app", COMPOSE_V2)
    emulator.delete_behind_back("vanishing-app")
    drifted = cli("cvms", "get", "drifting-app", "--json")
    vanished = cli("cvms", "get", "vanishing-app", "--json")

    assert new_hash != original_hash
    detail = json.loads(drifted.stdout)
    assert detail["compose_hash"] == new_hash
    assert detail["compose_file"]["docker_compose_file"] == COMPOSE_V2
    cvm = emulator.cvm_by_name("drifting-app")
    assert [revision.source for revision in cvm.revisions] == ["create", "external"]
    assert emulator.decrypted_env(cvm) == {"A": "1"}
    assert vanished.returncode == 1
    assert json.loads(vanished.stdout) == {
        "success": False,
        "error": "The requested CVM was not found: vanishing-app",
    }


def test_status_command_reads_auth_me(emulator: PhalaCloudEmulator, cli: CliRunner) -> None:
    result = cli("status", "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "success": True,
        "apiUrl": emulator.api_prefix,
        "apiVersion": API_VERSION_CURRENT,
        "username": emulator.identity[0],
        "team_name": emulator.identity[1],
        "profile": "default",
    }


# ----- HTTP level (fast, no node) ----------------------------------------------------------


def test_every_id_form_resolves_and_unknown_is_404(emulator: PhalaCloudEmulator) -> None:
    cvm = seed_cvm(emulator, "id-forms", COMPOSE_V1, env={"A": "1"}, running=False)

    forms = [
        str(cvm.numeric_id),
        cvm.vm_uuid,
        cvm.vm_uuid.replace("-", ""),
        f"app_{cvm.app_id}",
        cvm.app_id,
        f"app_{cvm.instance_id}",
        f"instance_{cvm.instance_id}",
        cvm.instance_id,
        "id-forms",
    ]
    for form in forms:
        status, body, _ = api_request(emulator, "GET", f"/cvms/{form}", version=API_VERSION_CURRENT)
        assert (status, body["app_id"]) == (200, cvm.app_id), form
    status, body, _ = api_request(emulator, "GET", "/cvms/no-such-cvm", version=API_VERSION_CURRENT)
    assert status == 404
    assert body["error_code"] == "ERR-03-001"
    assert body["message"] == "The requested CVM was not found: no-such-cvm"
    with pytest.raises(LookupError):
        emulator.decrypted_env("no-such-cvm")


def test_auth_is_checked_and_never_logged(emulator: PhalaCloudEmulator) -> None:
    missing_status, missing, _ = api_request(
        emulator, "GET", "/auth/me", api_key="", version=API_VERSION_CURRENT
    )
    wrong_status, wrong, _ = api_request(
        emulator, "GET", "/auth/me", api_key="nope", version=API_VERSION_CURRENT
    )
    ok_status, legacy, _ = api_request(emulator, "GET", "/auth/me", version=API_VERSION_LEGACY)

    assert (missing_status, wrong_status, ok_status) == (401, 401, 200)
    assert "detail" in missing and wrong == {"detail": "Invalid API key"}
    assert legacy["username"] == emulator.identity[0]
    assert emulator.api_key not in repr(emulator.request_log)
    assert emulator.count("GET", r"^/auth/me$") == 3
    emulator.clear_log()
    assert emulator.count() == 0


def test_legacy_and_current_shapes(emulator: PhalaCloudEmulator) -> None:
    emulator.configure(boot=30)  # keep it "starting" while we look
    cvm = seed_cvm(emulator, "shapes-app", COMPOSE_V1, running=False)

    _, legacy, _ = api_request(emulator, "GET", f"/cvms/{cvm.vm_uuid}", version=API_VERSION_LEGACY)
    _, current, _ = api_request(
        emulator, "GET", f"/cvms/{cvm.vm_uuid}", version=API_VERSION_CURRENT
    )
    _, legacy_apps, _ = api_request(
        emulator, "GET", "/apps?page=1&page_size=50", version="2025-10-28"
    )

    assert legacy["id"] == cvm.numeric_id and legacy["in_progress"] is True
    assert legacy["encrypted_env_pubkey"] == cvm.env_pubkey_hex
    assert legacy["kms_info"]["chain_id"] is None
    assert legacy["gateway_domain"] == emulator.gateway_base_domain
    assert current["id"] == str(cvm.numeric_id)
    assert current["progress"]["target"] == STATUS_RUNNING
    assert current["kms_info"]["encrypted_env_pubkey"] == cvm.env_pubkey_hex
    assert legacy_apps["dstack_apps"][0]["current_cvm"]["teepod_name"]


def test_delay_fault_slows_the_matching_call(emulator: PhalaCloudEmulator) -> None:
    emulator.inject_delay("GET", r"^/auth/me$", 0.4)

    started = time.monotonic()
    api_request(emulator, "GET", "/auth/me", version=API_VERSION_CURRENT)
    slow = time.monotonic() - started
    started = time.monotonic()
    api_request(emulator, "GET", "/auth/me", version=API_VERSION_CURRENT)
    fast = time.monotonic() - started

    assert slow >= 0.4 > fast


def test_reset_faults_and_binding(emulator: PhalaCloudEmulator) -> None:
    emulator.inject_error(None, r".*", status=418, detail="teapot", times=None)
    assert api_request(emulator, "GET", "/auth/me", version=API_VERSION_CURRENT)[0] == 418
    emulator.reset_faults()

    assert api_request(emulator, "GET", "/auth/me", version=API_VERSION_CURRENT)[0] == 200
    assert emulator.api_prefix.startswith("http://127.0.0.1:")
    assert emulator.api_prefix.endswith("/api/v1")


def test_compose_hash_is_deterministic_and_ports_parse() -> None:
    compose = {"name": "x", "allowed_envs": ["B", "A"], "docker_compose_file": "a: b\n"}
    reordered = dict(reversed(list(compose.items())))

    assert compose_hash_of(compose) == compose_hash_of(reordered)
    assert compose_hash_of(compose) != compose_hash_of({**compose, "allowed_envs": ["A", "B"]})
    assert published_ports(COMPOSE_V1) == [18789]


def test_env_decryption_rejects_garbage() -> None:
    keypair = AppEnvKeypair.generate()
    with pytest.raises(ValueError, match="encrypted_env"):
        keypair.decrypt_env("00" * 80)


# ----- container logs (`phala logs`): emulators/phala/logs.py ------------------------

LOGS_COMPOSE = (
    "services:\n  openclaw:\n    image: nginx:1.27\n    container_name: openclaw\n"
    "  sidecar:\n    image: busybox:1.36\n"
)


def seed_logs_cvm(emulator: PhalaCloudEmulator, *, public_logs: bool = True) -> Any:
    return seed_cvm(emulator, "logs-cvm", LOGS_COMPOSE, public_logs=public_logs)


def test_cli_logs_reads_the_tail_through_composition_and_the_log_endpoint(
    emulator: PhalaCloudEmulator, cli: CliRunner
) -> None:
    cvm = seed_logs_cvm(emulator)
    for number in range(4):
        emulator.append_container_log(cvm.vm_uuid, "openclaw", f"line {number}\n")
    emulator.append_container_log(cvm.vm_uuid, "app-sidecar-1", "sidecar line\n")
    emulator.clear_log()

    result = cli("logs", "openclaw", "--cvm-id", cvm.vm_uuid, "-n", "2")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "line 2\nline 3\n"
    paths = [record.path for record in emulator.request_log]
    assert paths == [
        f"/cvms/{cvm.vm_uuid.replace('-', '')}/composition",
        f"/guest-agent/{cvm.app_id}/logs/openclaw",
    ]
    # Container mode asks for structured lines: neither `text` nor `bare`.
    assert emulator.request_log[1].query == {"tail": ["2"], "lines": ["2"], "ansi": [""]}


def test_composition_has_the_sdk_schema_fields_and_one_entry_per_service(
    emulator: PhalaCloudEmulator,
) -> None:
    cvm = seed_logs_cvm(emulator)
    status, body, _ = api_request(
        emulator, "GET", f"/cvms/{cvm.vm_uuid}/composition", version=API_VERSION_CURRENT
    )
    assert status == 200
    assert set(body) == {
        "is_online",
        "is_public",
        "error",
        "docker_compose_file",
        "manifest_version",
        "version",
        "runner",
        "features",
        "containers",
    }
    assert [container["names"] for container in body["containers"]] == [
        ["/openclaw"],
        ["/app-sidecar-1"],
    ]
    for container in body["containers"]:
        assert set(container) == {
            "id",
            "names",
            "image",
            "image_id",
            "command",
            "created",
            "state",
            "status",
            "log_endpoint",
        }
        assert isinstance(container["created"], int)
        assert container["log_endpoint"].startswith(f"http://127.0.0.1:{emulator.port}/")


def test_log_endpoint_sends_base64_ndjson_unless_text_or_bare_and_needs_no_key(
    emulator: PhalaCloudEmulator,
) -> None:
    cvm = seed_logs_cvm(emulator)
    emulator.append_container_log(cvm.vm_uuid, "openclaw", "héllo\n", channel="stderr")
    _, body, _ = api_request(
        emulator, "GET", f"/cvms/{cvm.vm_uuid}/composition", version=API_VERSION_CURRENT
    )
    endpoint = body["containers"][0]["log_endpoint"]

    def fetch(query: str) -> bytes:
        with urllib.request.urlopen(f"{endpoint}?{query}", timeout=10) as response:  # noqa: S310
            return response.read()

    assert json.loads(fetch("ansi")) == {"channel": "stderr", "message": "aMOpbGxvCg=="}
    assert json.loads(fetch("text&ansi")) == {"channel": "stderr", "message": "héllo\n"}
    assert fetch("text&bare") == "héllo\n".encode()


def test_cli_logs_names_an_unknown_container_and_exits_1(
    emulator: PhalaCloudEmulator, cli: CliRunner
) -> None:
    cvm = seed_logs_cvm(emulator)
    result = cli("logs", "nginx", "--cvm-id", cvm.vm_uuid)
    assert result.returncode == 1
    assert f"Container 'nginx' not found in CVM '{cvm.vm_uuid.replace('-', '')}'" in result.stderr


def test_cli_logs_of_a_cvm_without_public_logs_has_no_endpoint_and_warns(
    emulator: PhalaCloudEmulator, cli: CliRunner
) -> None:
    cvm = seed_logs_cvm(emulator, public_logs=False)
    result = cli("logs", "openclaw", "--cvm-id", cvm.vm_uuid)
    assert result.returncode == 1
    assert "No log endpoints available" in result.stderr
    assert "public_logs=false" in result.stderr

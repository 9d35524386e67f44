"""`ops pair`: minting a mux pairing token through the admin API."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.mux_protocol import MUX_INBOUND_TIMEOUT_MS
from components.openclaw_config import MUX_ACCOUNT_ID, tenant_config
from ops import ConfigError
from ops.__main__ import main
from ops.pairing import (
    PairingError,
    PairingRequest,
    format_relative,
    mint_pairing_token,
    pairing_token_url,
)
from tests.ops.mux_admin_fake import (
    FakeMuxAdmin,
    refused_base_url,
    running_fake_mux,
    silent_listener,
)
from tests.ops.outputs_document import (
    ALICE_OPENCLAW_ID,
    DELETE,
    MUX_ADMIN_TOKEN,
    make_outputs,
    with_changes,
    write_outputs,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ALICE_INBOUND_URL = make_outputs()["tenants"]["alice"]["inboundUrl"]


@dataclass
class CliRun:
    exit_code: int
    stdout: str
    stderr: str


def run_pair(outputs_path: Path, *arguments: str) -> CliRun:
    """Runs `ops pair` in-process; no output may ever contain the admin token."""
    stdout, stderr = io.StringIO(), io.StringIO()
    exit_code = main(
        ["pair", *arguments, "--outputs", str(outputs_path)], stdout=stdout, stderr=stderr
    )
    run = CliRun(exit_code, stdout.getvalue(), stderr.getvalue())
    assert MUX_ADMIN_TOKEN not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    return run


def assert_one_line_error(run: CliRun, exit_code: int) -> str:
    assert run.exit_code == exit_code
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def fake_mux() -> Iterator[FakeMuxAdmin]:
    with running_fake_mux(FakeMuxAdmin(admin_token=MUX_ADMIN_TOKEN)) as fake:
        yield fake


def outputs_for(tmp_path: Path, mux_base_url: str) -> Path:
    return write_outputs(tmp_path / "outputs.json", make_outputs(mux_base_url=mux_base_url))


def test_mux_url_reaches_the_admin_api_elsewhere_than_the_outputs_base_url(
    tmp_path: Path, fake_mux: FakeMuxAdmin
) -> None:
    outputs = outputs_for(tmp_path, "https://unreachable-18891.example.invalid")
    run = run_pair(outputs, "alice", "telegram", "--mux-url", fake_mux.base_url)
    assert run.exit_code == 0, run.stderr
    (request,) = fake_mux.requests
    assert request.body["openclawId"] == ALICE_OPENCLAW_ID


def test_mux_url_in_plain_http_off_loopback_is_refused(tmp_path: Path) -> None:
    outputs = outputs_for(tmp_path, "https://mux.example.invalid")
    run = run_pair(outputs, "alice", "telegram", "--mux-url", "http://10.1.2.3:18891")
    assert "must be an https:// URL" in assert_one_line_error(run, 2)


def test_telegram_pairing_sends_documented_body_and_prints_start_command(
    tmp_path: Path, fake_mux: FakeMuxAdmin
) -> None:
    run = run_pair(outputs_for(tmp_path, fake_mux.base_url), "alice", "telegram")

    assert run.exit_code == 0, run.stderr
    (request,) = fake_mux.requests
    assert request.path == "/v1/admin/pairings/token"
    assert request.headers["authorization"] == f"Bearer {MUX_ADMIN_TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {
        "openclawId": ALICE_OPENCLAW_ID,
        "inboundUrl": ALICE_INBOUND_URL,
        "inboundTimeoutMs": MUX_INBOUND_TIMEOUT_MS,
        "channel": "telegram",
        "ttlSec": 900,
    }
    token = re.search(r"token:\s+(mpt_\S+)", run.stdout)
    assert token is not None
    assert f"send:    /start {token.group(1)}" in run.stdout
    assert re.search(r"expires: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in \d+m \d+s\)", run.stdout)


def _registered_timeouts_ms() -> set[int]:
    """The inbound timeouts a tenant's bootstrap config registers with, per channel."""
    config = tenant_config("gateway-token", "https://mux.example.invalid", "register-key")
    return {
        channel["accounts"][MUX_ACCOUNT_ID]["mux"]["timeoutMs"]
        for channel in config["channels"].values()
    }


@pytest.mark.parametrize("channel", ["telegram", "discord", "whatsapp"])
def test_pairing_without_override_keeps_the_timeout_the_tenant_registers_with(
    tmp_path: Path, fake_mux: FakeMuxAdmin, channel: str
) -> None:
    # The pairing endpoint upserts the tenant's row: any other value here would
    # change how long mux waits for the tenant until its gateway registers again.
    (registered,) = _registered_timeouts_ms()
    run = run_pair(outputs_for(tmp_path, fake_mux.base_url), "alice", channel)

    assert run.exit_code == 0, run.stderr
    assert fake_mux.requests[0].body["inboundTimeoutMs"] == registered


@pytest.mark.parametrize(
    ("channel", "mux_channels"),
    [("discord", ["telegram"]), ("whatsapp", ["telegram", "discord"])],
)
def test_channel_the_mux_does_not_run_is_refused_naming_the_ones_it_does(
    tmp_path: Path, fake_mux: FakeMuxAdmin, channel: str, mux_channels: list[str]
) -> None:
    document = with_changes(
        make_outputs(mux_base_url=fake_mux.base_url), (("mux", "channels"), mux_channels)
    )
    run = run_pair(write_outputs(tmp_path / "outputs.json", document), "alice", channel)

    message = assert_one_line_error(run, 2)
    assert f"does not run {channel}, only {', '.join(mux_channels)}" in message
    # Refused before the admin API is asked: no token exists that nobody can redeem.
    assert fake_mux.requests == []


def test_outputs_without_mux_channels_still_pair_with_a_warning(
    tmp_path: Path, fake_mux: FakeMuxAdmin
) -> None:
    document = with_changes(
        make_outputs(mux_base_url=fake_mux.base_url), (("mux", "channels"), DELETE)
    )
    run = run_pair(write_outputs(tmp_path / "outputs.json", document), "alice", "discord")

    assert run.exit_code == 0, run.stderr
    assert len(fake_mux.requests) == 1
    (warning,) = run.stderr.splitlines()
    assert warning.startswith("warning: the stack outputs do not list the channels mux 'mux'")
    assert "not checked that it serves discord" in warning
    assert "Pairing token for tenant 'alice' on discord" in run.stdout


def test_session_key_ttl_and_inbound_timeout_are_passed_through(
    tmp_path: Path, fake_mux: FakeMuxAdmin
) -> None:
    run = run_pair(
        outputs_for(tmp_path, fake_mux.base_url),
        "alice",
        "discord",
        "--session-key",
        "agent:main:main",
        "--ttl-sec",
        "120",
        "--inbound-timeout-ms",
        "45000",
    )

    assert run.exit_code == 0, run.stderr
    assert fake_mux.requests[0].body["sessionKey"] == "agent:main:main"
    assert fake_mux.requests[0].body["ttlSec"] == 120
    assert fake_mux.requests[0].body["inboundTimeoutMs"] == 45000
    # Only Telegram has a /start command; elsewhere the bare token is sent.
    assert "the token itself as a message" in run.stdout


def test_deep_link_is_printed_when_mux_returns_one(tmp_path: Path) -> None:
    fake = FakeMuxAdmin(admin_token=MUX_ADMIN_TOKEN, telegram_bot_username="openclaw_mux_bot")
    with running_fake_mux(fake):
        run = run_pair(outputs_for(tmp_path, fake.base_url), "alice", "telegram")
    assert run.exit_code == 0, run.stderr
    assert re.search(r"link:    https://t\.me/openclaw_mux_bot\?start=mpt_\S+", run.stdout)


def test_wrong_admin_token_is_a_401_one_line_error(tmp_path: Path) -> None:
    with running_fake_mux(FakeMuxAdmin(admin_token="the-token-mux-really-has")) as fake:
        run = run_pair(outputs_for(tmp_path, fake.base_url), "alice", "telegram")
    line = assert_one_line_error(run, 1)
    assert "rejected the admin token (HTTP 401)" in line


def test_admin_api_disabled_is_a_404_one_line_error(tmp_path: Path) -> None:
    with running_fake_mux(FakeMuxAdmin(admin_token=None)) as fake:
        run = run_pair(outputs_for(tmp_path, fake.base_url), "alice", "telegram")
    line = assert_one_line_error(run, 1)
    assert "admin API is disabled or absent" in line
    assert "HTTP 404" in line


def test_instance_id_conflict_is_a_409_one_line_error(tmp_path: Path) -> None:
    fake = FakeMuxAdmin(admin_token=MUX_ADMIN_TOKEN, conflicting_openclaw_ids={ALICE_OPENCLAW_ID})
    with running_fake_mux(fake):
        run = run_pair(outputs_for(tmp_path, fake.base_url), "alice", "telegram")
    line = assert_one_line_error(run, 1)
    assert f"instance id conflict for openclawId {ALICE_OPENCLAW_ID} (HTTP 409)" in line


def test_channel_the_mux_does_not_support_is_a_400_with_the_servers_reason(
    tmp_path: Path,
) -> None:
    fake = FakeMuxAdmin(admin_token=MUX_ADMIN_TOKEN, supported_channels=("telegram", "discord"))
    with running_fake_mux(fake):
        run = run_pair(outputs_for(tmp_path, fake.base_url), "alice", "whatsapp")
    line = assert_one_line_error(run, 1)
    assert line == (
        "error: mux rejected the pairing request (HTTP 400): unsupported channel for token pairing"
    )


def test_missing_field_is_a_400_with_the_servers_reason(fake_mux: FakeMuxAdmin) -> None:
    request = PairingRequest(openclaw_id="", inbound_url=ALICE_INBOUND_URL, channel="telegram")
    with pytest.raises(PairingError) as caught:
        mint_pairing_token(fake_mux.base_url, MUX_ADMIN_TOKEN, request)
    assert (
        str(caught.value) == "mux rejected the pairing request (HTTP 400): openclawId is required"
    )


def test_server_error_that_echoes_the_admin_token_is_scrubbed(tmp_path: Path) -> None:
    fake = FakeMuxAdmin(admin_token=MUX_ADMIN_TOKEN, fail_with_status_echoing_auth=500)
    with running_fake_mux(fake):
        run = run_pair(outputs_for(tmp_path, fake.base_url), "alice", "telegram")
    line = assert_one_line_error(run, 1)  # run_pair also asserts the token is absent
    assert "(HTTP 500): internal failure handling header Bearer <redacted>" in line


def test_redirect_is_not_followed_so_the_admin_token_goes_nowhere_else(tmp_path: Path) -> None:
    elsewhere = FakeMuxAdmin(admin_token=MUX_ADMIN_TOKEN)
    with running_fake_mux(elsewhere):
        redirecting = FakeMuxAdmin(admin_token=MUX_ADMIN_TOKEN, redirect_to=elsewhere.base_url)
        with running_fake_mux(redirecting):
            run = run_pair(outputs_for(tmp_path, redirecting.base_url), "alice", "telegram")
    line = assert_one_line_error(run, 1)
    assert "redirect (HTTP 307" in line
    assert elsewhere.requests == []


def test_connection_refused_is_a_one_line_error(tmp_path: Path) -> None:
    base_url = refused_base_url()
    run = run_pair(outputs_for(tmp_path, base_url), "alice", "telegram")
    line = assert_one_line_error(run, 1)
    assert (
        line == f"error: cannot reach mux at {base_url}/v1/admin/pairings/token: connection refused"
    )


def test_mux_that_never_answers_times_out_with_a_one_line_error(tmp_path: Path) -> None:
    with silent_listener() as base_url:
        run = run_pair(outputs_for(tmp_path, base_url), "alice", "telegram", "--timeout", "0.2")
    line = assert_one_line_error(run, 1)
    assert "did not answer within 0.2 s" in line


def test_unknown_tenant_is_a_config_error_listing_known_tenants(
    tmp_path: Path, fake_mux: FakeMuxAdmin
) -> None:
    run = run_pair(outputs_for(tmp_path, fake_mux.base_url), "bob", "telegram")
    line = assert_one_line_error(run, 2)
    assert line == "error: stack outputs have no tenant 'bob'; known tenants: alice, carol"
    assert fake_mux.requests == []


def test_stack_without_mux_is_a_config_error(tmp_path: Path) -> None:
    document = with_changes(make_outputs(), (("mux",), None), (("muxSecrets",), None))
    run = run_pair(write_outputs(tmp_path / "outputs.json", document), "alice", "telegram")
    assert "deploys no mux-server" in assert_one_line_error(run, 2)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("alice", "sms"), "invalid choice: 'sms'"),
        (("alice", "telegram", "--ttl-sec", "0"), "must be at least 1"),
        (("alice", "telegram", "--ttl-sec", "3601"), "--ttl-sec must be between 1 and 3600"),
        (("alice", "telegram", "--inbound-timeout-ms", "soon"), "not a whole number"),
        (("alice", "telegram", "--session-key", " "), "--session-key must not be empty"),
        (("alice", "telegram", "--timeout", "inf"), "--timeout: must be at most 3600 seconds"),
        (("alice", "telegram", "--timeout", "nan"), "--timeout: must be greater than 0"),
        (("alice", "telegram", "--timeout", "1e400"), "--timeout: must be at most 3600 seconds"),
    ],
)
def test_bad_arguments_are_usage_errors_with_exit_2_and_no_request(
    tmp_path: Path, fake_mux: FakeMuxAdmin, arguments: tuple[str, ...], expected: str
) -> None:
    run = run_pair(outputs_for(tmp_path, fake_mux.base_url), *arguments)
    assert expected in assert_one_line_error(run, 2)
    assert fake_mux.requests == []


def test_outputs_and_stack_flags_are_mutually_exclusive(tmp_path: Path) -> None:
    stderr = io.StringIO()
    exit_code = main(
        ["pair", "alice", "telegram", "--outputs", "x.json", "--stack", "prod"],
        stdout=io.StringIO(),
        stderr=stderr,
    )
    assert exit_code == 2
    assert "not allowed with argument" in stderr.getvalue()


def test_admin_token_is_only_sent_over_https_except_to_loopback() -> None:
    assert pairing_token_url("https://mux.example/").endswith(".example/v1/admin/pairings/token")
    assert pairing_token_url("http://127.0.0.1:8080").startswith("http://127.0.0.1:8080/")
    with pytest.raises(ConfigError, match="must be an https:// URL"):
        pairing_token_url("http://mux.example")


@pytest.mark.parametrize(
    ("delta_sec", "expected"),
    [(899.6, "in 15m 0s"), (59, "in 59s"), (3 * 3600 + 125, "in 3h 2m"), (-61, "1m 1s ago")],
)
def test_relative_expiry_formatting(delta_sec: float, expected: str) -> None:
    assert format_relative(delta_sec) == expected


def test_python_dash_m_ops_pair_success_and_failure_exit_codes(
    tmp_path: Path, fake_mux: FakeMuxAdmin
) -> None:
    outputs = outputs_for(tmp_path, fake_mux.base_url)
    command = [sys.executable, "-m", "ops", "pair", "alice", "telegram", "--outputs", str(outputs)]

    ok = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    failed = subprocess.run(
        [*command[:4], "bob", *command[5:]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert ok.returncode == 0, ok.stderr
    assert "/start mpt_" in ok.stdout
    assert failed.returncode == 2
    assert (
        failed.stderr.strip()
        == "error: stack outputs have no tenant 'bob'; known tenants: alice, carol"
    )
    assert MUX_ADMIN_TOKEN not in ok.stdout + ok.stderr + failed.stdout + failed.stderr

"""Pure unit tests of the deploy driver's helpers (no CLI, no network).

The end-to-end behaviour with the real `phala` CLI lives in test_deploy_with_emulator.py;
these pin the small pieces it is built from, including the env-file encoding, against a
port of the CLI's own dotenv parser.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from driver import phala_cvm as driver
from driver import protocol

# --------------------------------------------------------------------------- the CLI's parser

# The dotenv parser bundled in phala@1.1.18 (node_modules/phala/dist/index.js), ported
# line for line: CR/CRLF become LF first, then this regex runs over the whole text.
_CLI_DOTENV_LINE = re.compile(
    r"""(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)""",
    re.MULTILINE,
)
_CLI_UNQUOTE = re.compile(r"""^(['"`])([\s\S]*)\1$""", re.MULTILINE)


def parse_like_phala_cli(text: str) -> dict[str, str]:
    parsed: dict[str, str] = {}
    text = re.sub(r"\r\n?", "\n", text)
    for match in _CLI_DOTENV_LINE.finditer(text):
        value = (match.group(2) or "").strip()
        first = value[:1]
        value = _CLI_UNQUOTE.sub(r"\2", value)
        if first == '"':
            value = value.replace("\\n", "\n").replace("\\r", "\r")
        parsed[match.group(1)] = value
    return parsed


HOSTILE_VALUES = {
    "SINGLE_QUOTE": "it's",
    "DOUBLE_QUOTE": 'say "hi"',
    "BACKTICK": "run `id`",
    "SINGLE_AND_BACKTICK": "it's `id`",
    "SINGLE_AND_DOUBLE": 'it\'s "x"',
    "SPACES": "a b  c",
    "HASH": "abc#def # ghi",
    "DOLLAR": "$HOME ${USER} $(id)",
    "EQUALS": "a=b==c=",
    "BACKSLASHES": "C:\\dir\\new\\t\\\\",
    "LITERAL_BACKSLASH_N": "one\\ntwo",
    "REAL_NEWLINES": "-----BEGIN KEY-----\nabc\ndef\n-----END KEY-----\n",
    "CARRIAGE_RETURNS": "windows\r\nline\rend",
    "CR_WITH_QUOTES_AND_BACKSLASH": "it's `x`\r\\",
    "UNICODE": "héllo ✓ 日本語 🚀",
    "PADDED": "  leading and trailing  ",
    "EMPTY": "",
    "TRAILING_BACKSLASH": "ends with \\",
    "LOOKS_LIKE_ANOTHER_LINE": "x\nOTHER=injected",
}


# --------------------------------------------------------------------------- env file


def test_render_env_file_round_trips_hostile_values_through_the_cli_parser() -> None:
    rendered = driver.render_env_file(HOSTILE_VALUES)

    assert parse_like_phala_cli(rendered) == HOSTILE_VALUES


def test_dotenv_line_prefers_single_quotes_then_backticks_then_double_quotes() -> None:
    assert driver.dotenv_line("A", "plain") == "A='plain'"
    assert driver.dotenv_line("A", "it's") == "A=`it's`"
    assert driver.dotenv_line("A", "it's `x`") == 'A="it\'s `x`"'


def test_dotenv_line_carries_a_carriage_return_only_as_a_double_quoted_escape() -> None:
    assert driver.dotenv_line("A", "x\ry") == 'A="x\\ry"'


@pytest.mark.parametrize(
    "value",
    [
        "all three ' ` \" quotes",
        "single ' backtick ` and literal \\n",
        'carriage\r return with " quote',
        "carriage\r return with literal \\r",
    ],
)
def test_dotenv_line_refuses_a_value_it_cannot_carry_and_names_only_the_key(value: str) -> None:
    with pytest.raises(driver.EnvFileError) as raised:
        driver.dotenv_line("MY_SECRET", value)

    message = str(raised.value)
    assert "MY_SECRET" in message
    assert value not in message
    assert "phala CLI" in message


@pytest.mark.parametrize("key", ["", "1ABC", "A-B", "A B", "A=B", "Ä"])
def test_dotenv_line_rejects_names_the_cli_would_misread(key: str) -> None:
    with pytest.raises(driver.EnvFileError, match="invalid env var name"):
        driver.dotenv_line(key, "value")


def test_render_env_file_keeps_the_given_order_one_line_per_key() -> None:
    rendered = driver.render_env_file({"B": "2", "A": "1"})

    assert rendered == "B='2'\nA='1'\n"
    assert driver.render_env_file({}) == ""


# --------------------------------------------------------------------------- Scrubber


def test_scrubber_replaces_secrets_raw_and_as_json_escaped() -> None:
    scrub = driver.Scrubber(['pa"ss\\word', "ünïcode-secret"])

    text = 'raw pa"ss\\word json "pa\\"ss\\\\word" ascii \\u00fcn\\u00efcode-secret ünïcode-secret'

    assert scrub(text) == (
        f'raw {driver.REDACTED} json "{driver.REDACTED}" ascii {driver.REDACTED} {driver.REDACTED}'
    )


def test_scrubber_replaces_long_lines_of_a_multiline_secret_alone() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nab\n-----END PRIVATE KEY-----"
    scrub = driver.Scrubber([pem])

    echoed = scrub("error near line: MIIEvQIBADANBgkqhkiG9w0B")

    assert "MIIEvQIBADANBgkqhkiG9w0B" not in echoed
    assert scrub("ab is a short line and stays") == "ab is a short line and stays"


def test_scrubber_replaces_the_longest_secret_whole_and_ignores_empty_ones() -> None:
    scrub = driver.Scrubber(["", "token", "token-with-suffix"])

    assert scrub("token-with-suffix and token") == f"{driver.REDACTED} and {driver.REDACTED}"
    assert driver.Scrubber([""])("nothing to hide") == "nothing to hide"


# --------------------------------------------------------------------------- read_spec


def full_inputs(**overrides: str) -> dict[str, str]:
    inputs = {
        protocol.ROLE: "openclaw",
        protocol.CVM_NAME: "alice-gateway",
        protocol.EXISTING_CVM_ID: "",
        protocol.INSTANCE_TYPE: "tdx.medium",
        protocol.DISK_SIZE_GB: "80",
        protocol.REGION: "",
        protocol.OS_IMAGE: "",
        protocol.KMS: "phala",
        protocol.DEV_OS: "true",
        protocol.SSH_PUBLIC_KEY: "ssh-ed25519 AAAA op@laptop",
        protocol.WAIT_TIMEOUT_SECONDS: "120",
        protocol.COMPOSE: "services: {}\n",
        protocol.ENV_KEYS: "MASTER_KEY,S3_PREFIX",
        protocol.SECRET_ENV_KEYS: "MASTER_KEY",
        protocol.env_value_var("MASTER_KEY"): "m" * 40,
        protocol.env_value_var("S3_PREFIX"): "",
    }
    inputs.update(overrides)
    return inputs


def test_read_spec_parses_every_input_and_keeps_env_order() -> None:
    spec = driver.read_spec(full_inputs())

    assert spec.role == "openclaw"
    assert spec.name == "alice-gateway"
    assert spec.existing_cvm_id is None  # "" means not configured
    assert (spec.instance_type, spec.disk_size_gb, spec.wait_timeout_seconds) == (
        "tdx.medium",
        80,
        120,
    )
    assert (spec.region, spec.os_image, spec.kms) == (None, None, "phala")
    assert spec.dev_os is True
    assert spec.ssh_public_key == "ssh-ed25519 AAAA op@laptop"
    assert list(spec.env.items()) == [("MASTER_KEY", "m" * 40), ("S3_PREFIX", "")]
    assert spec.secret_values == ["m" * 40]
    assert spec.health is None
    assert "m" * 40 not in repr(spec)  # env is kept out of the dataclass repr


def test_read_spec_health_check_defaults_to_any_http_answer() -> None:
    spec = driver.read_spec(
        full_inputs(**{protocol.HEALTH_URL_TEMPLATE: "https://{app_id}-1.{base_domain}/"})
    )

    assert spec.health == driver.HealthCheck(
        "https://{app_id}-1.{base_domain}/", protocol.HEALTH_EXPECT_HTTP
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({protocol.ROLE: ""}, protocol.ROLE),
        ({protocol.ROLE: "database"}, "must be one of openclaw, mux"),
        ({protocol.CVM_NAME: ""}, protocol.CVM_NAME),
        ({protocol.COMPOSE: ""}, protocol.COMPOSE),
        ({protocol.INSTANCE_TYPE: ""}, protocol.INSTANCE_TYPE),
        ({protocol.ENV_KEYS: "MASTER_KEY,MISSING"}, "missing value for CVM env var MISSING"),
        ({protocol.DISK_SIZE_GB: "forty"}, "must be integers"),
        ({protocol.WAIT_TIMEOUT_SECONDS: "1.5"}, "must be integers"),
    ],
)
def test_read_spec_names_what_is_wrong(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(driver.DriverError, match=re.escape(message)):
        driver.read_spec(full_inputs(**overrides))


# --------------------------------------------------------------------------- previous_record


def test_previous_record_is_the_last_json_line_with_a_cvm_id() -> None:
    stdout = 'noise\n{"cvmId": "old"}\n{"cvmId": "new", "appId": "abc"}\n\n'

    assert driver.previous_record({"PULUMI_COMMAND_STDOUT": stdout}) == {
        "cvmId": "new",
        "appId": "abc",
    }


@pytest.mark.parametrize(
    "stdout",
    ["", "\n\n", "not json", '{"cvmId": ""}', '["cvmId"]', '{"appId": "x"}'],
)
def test_previous_record_is_none_without_a_usable_record(stdout: str) -> None:
    assert driver.previous_record({"PULUMI_COMMAND_STDOUT": stdout}) is None
    assert driver.previous_record({}) is None


# --------------------------------------------------------------------------- extract_json


def test_extract_json_skips_the_progress_line_and_trailing_text() -> None:
    text = 'Provisioning CVM x...\n{"success": true, "nested": {"a": 1}}\ntrailing {'

    assert driver.extract_json(text) == {"success": True, "nested": {"a": 1}}


def test_extract_json_without_an_object_raises_value_error() -> None:
    with pytest.raises(ValueError, match="no JSON object"):
        driver.extract_json("✗ CVM not found\n")


# --------------------------------------------------------------------------- normalize_cvm_id


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d"),
        ("0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d", "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d"),
        ("ab" * 20, "app_" + "ab" * 20),
        ("app_" + "ab" * 20, "app_" + "ab" * 20),
        ("alice-gateway", "alice-gateway"),
        ("1042", "1042"),
    ],
)
def test_normalize_cvm_id_matches_what_the_cli_sends(given: str, sent: str) -> None:
    assert driver.normalize_cvm_id(given) == sent


# --------------------------------------------------------------------------- phala_credentials


def write_credentials(directory: Path, token: str, api_prefix: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "credentials.json").write_text(
        json.dumps(
            {
                "schema_version": 1,
                "current_profile": "team",
                "profiles": {
                    "other": {"token": "phak_other", "api_prefix": "https://other/api/v1"},
                    "team": {"token": token, "api_prefix": api_prefix},
                },
            }
        )
    )


def test_phala_credentials_env_key_and_prefix_win_over_the_login_profile(tmp_path: Path) -> None:
    write_credentials(tmp_path / ".phala-cloud", "phak_profile", "https://profile/api/v1")

    key, prefix = driver.phala_credentials(
        {
            "HOME": str(tmp_path),
            "PHALA_CLOUD_API_KEY": "phak_env",
            "PHALA_CLOUD_API_PREFIX": " http://127.0.0.1:9/api/v1/ ",
        }
    )

    assert (key, prefix) == ("phak_env", "http://127.0.0.1:9/api/v1")


def test_phala_credentials_fall_back_to_the_current_login_profile(tmp_path: Path) -> None:
    write_credentials(tmp_path / "custom-dir", "phak_profile", "https://profile/api/v1/")

    key, prefix = driver.phala_credentials(
        {"HOME": str(tmp_path / "elsewhere"), "PHALA_CLOUD_DIR": str(tmp_path / "custom-dir")}
    )

    assert (key, prefix) == ("phak_profile", "https://profile/api/v1")


def test_phala_credentials_without_anything_give_no_key_and_the_public_api(
    tmp_path: Path,
) -> None:
    (tmp_path / ".phala-cloud").mkdir()
    (tmp_path / ".phala-cloud" / "credentials.json").write_text("{not json")

    assert driver.phala_credentials({"HOME": str(tmp_path)}) == (
        None,
        driver.DEFAULT_API_PREFIX,
    )


# --------------------------------------------------------------------------- output_record


def test_output_record_reads_the_current_schema_and_strips_the_app_prefix() -> None:
    cvm = {
        "id": "1001",
        "vm_uuid": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "app_id": "app_" + "ab" * 20,
        "name": "alice-gateway",
        "status": "running",
        "gateway": {"base_domain": "dstack.example", "cname": None},
        "compose_hash": "f" * 64,
        "kms_info": {"encrypted_env_pubkey": "ignored"},
    }

    record = driver.output_record(cvm)

    assert record == {
        "cvmId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "appId": "ab" * 20,
        "name": "alice-gateway",
        "status": "running",
        "gatewayBaseDomain": "dstack.example",
        "composeHash": "f" * 64,
    }
    assert tuple(record) == protocol.OUTPUT_FIELDS


def test_output_record_accepts_the_legacy_gateway_domain() -> None:
    record = driver.output_record(
        {"id": 1001, "app_id": "cd" * 20, "name": "n", "gateway_domain": "legacy.example"}
    )

    assert (record["cvmId"], record["gatewayBaseDomain"]) == ("1001", "legacy.example")
    assert (record["status"], record["composeHash"]) == ("", "")


def test_output_record_refuses_a_cvm_without_ids_or_domain() -> None:
    with pytest.raises(driver.DriverError, match="cvmId, appId, gatewayBaseDomain"):
        driver.output_record({"name": "n", "status": "running"})


# --- PhalaApi against a canned local server ----------------------------------


class _CannedApi:
    """A tiny HTTP server on 127.0.0.1 that answers every GET with one JSON body."""

    def __init__(self, status: int, body: dict) -> None:
        import http.server
        import threading

        status_code, payload = status, json.dumps(body).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v1"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_app_whose_cvm_was_deleted_is_not_adoptable() -> None:
    listing = {
        "dstack_apps": [
            {"app_id": "a" * 40, "name": "alice-agent", "current_cvm": None},
            {"app_id": "b" * 40, "name": "other", "current_cvm": {"name": "alice-agent-2"}},
        ],
        "total_pages": 1,
    }
    with _CannedApi(200, listing) as prefix:
        assert driver.PhalaApi("key", prefix).cvms_named("alice-agent") == []


def test_a_rejected_api_key_says_where_to_set_it() -> None:
    with _CannedApi(401, {"detail": "Invalid API key"}) as prefix:
        api = driver.PhalaApi("wrong-key", prefix)
        with pytest.raises(driver.PhalaApiError) as info:
            api.get_cvm("alice-agent")
    assert "HTTP 401: Invalid API key" in str(info.value)
    assert "PHALA_CLOUD_API_KEY" in str(info.value)
    assert "wrong-key" not in str(info.value)


def test_a_health_template_with_an_unknown_placeholder_is_a_clear_error() -> None:
    spec = driver.read_spec(
        {
            protocol.ROLE: "mux",
            protocol.CVM_NAME: "openclaw-mux",
            protocol.INSTANCE_TYPE: "tdx.small",
            protocol.COMPOSE: "services: {}",
            protocol.HEALTH_URL_TEMPLATE: "https://{app}/health",
        }
    )
    deployer = driver.Deployer(spec, cli=None, api=None, scrub=str)  # type: ignore[arg-type]
    with pytest.raises(driver.DriverError, match="may use only"):
        deployer.verify_health({"app_id": "a" * 40, "gateway": {"base_domain": "x.example"}})


# --------------------------------------------------------------------------- orphaned workdirs


def test_a_killed_drivers_workdir_is_swept_and_live_ones_are_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["sleep", "0"])
    dead.wait()  # its pid is gone now
    alive = subprocess.Popen(["sleep", "30"])
    try:
        orphan = tmp_path / f"{driver.WORKDIR_PREFIX}{dead.pid}-abc"
        running = tmp_path / f"{driver.WORKDIR_PREFIX}{alive.pid}-def"
        unrelated = tmp_path / f"{driver.WORKDIR_PREFIX}not-a-pid"
        for folder in (orphan, running, unrelated):
            folder.mkdir()
            (folder / "deploy.env").write_text("MASTER_KEY=secret\n")
        assert driver.sweep_orphaned_workdirs(tmp_path) == [orphan]
        assert not orphan.exists() and running.exists() and unrelated.exists()
    finally:
        alive.kill()
        alive.wait()


def test_operator_knobs_never_share_a_name_with_a_command_input() -> None:
    # The Command's environment is applied over the operator's: a knob named like an
    # input would be silently overwritten by the program's value.
    inputs = {value for name, value in vars(protocol).items() if name.isupper()}
    for knob in (driver.POLL_SECONDS_VAR, driver.HEALTH_URL_OVERRIDE_VAR):
        assert knob not in inputs


def _parse_with_real_cli(tmp_path: Path, *args: str) -> str:
    """What the pinned phala CLI answers to argv; its API is an unused local port."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PHALA_DISABLE_UPDATE_CHECK": "1",
        "PHALA_CLOUD_API_PREFIX": "http://127.0.0.1:9/api/v1",
        "PHALA_CLOUD_API_KEY": "not-a-real-key",
    }
    completed = subprocess.run(
        [str(driver.DEFAULT_CLI), *args],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return completed.stdout + completed.stderr


def test_a_value_starting_with_a_dash_reaches_the_phala_cli_as_a_value(tmp_path: Path) -> None:
    # A separate word starting with '-' is read as an option by the CLI's parser...
    separate = _parse_with_real_cli(tmp_path, "cvms", "delete", "-abc", "--force", "--json")
    assert "unknown or unexpected option" in separate
    # ...so the driver attaches every value to its option.
    attached = _parse_with_real_cli(
        tmp_path, "cvms", "delete", driver.option("cvm-id", "-abc"), "--force", "--json"
    )
    assert "unknown or unexpected option" not in attached
    deploy = _parse_with_real_cli(
        tmp_path,
        "deploy",
        driver.option("cvm-id", "-abc"),
        driver.option("compose", "-missing-compose.yml"),
        "--json",
    )
    assert "Docker compose file not found: -missing-compose.yml" in deploy

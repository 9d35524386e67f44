"""No secret reaches plaintext anywhere the real engine writes.

A full stack (a mux, S3 tenants in two jurisdictions, a local tenant) is deployed,
previewed, updated and refreshed with every secret set to a distinctive value. Every
secret, derived value, Cloudflare token value and S3 secret is then looked for, raw,
base64 and JSON-escaped (tests/support/secret_scan.py), in: the state files of the
`file://` backend, `stack export`, the full output of `preview --diff`, `up --diff` and
`refresh`, `stack output`, every file left in the temp directory (the engine's and the
plugins' logs included, written at -v=9) and in PULUMI_HOME. The scan must find
nothing, must find a value that was deliberately left plain, and `--show-secrets` must
still return every secret: the scan passes because values are protected, not missing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components import mux_jwt_key
from components.derivation import derive_mux_keys, derive_tenant_keys
from emulators.cloudflare import DEFAULT_API_TOKEN, CloudflareEmulator
from emulators.phala import DEFAULT_API_KEY, PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import print_past_capture, shown
from tests.support.secret_scan import Hit, files_under, scan_files, scan_text
from tests.support.stack_configs import ACCOUNT_ID, IMAGE, MUX_IMAGE, SSH_KEY

STACK = "scan"
IMAGE_V2 = "h4x3rotab/openclaw-cvm@sha256:" + "9" * 64
CANARY = "canary-deliberately-plain-bot"  # set as plain config: the scan must see it
TENANT_KEYS = {
    "alice-agent": "MK-alice-7c1f0e9a2b4d4e8f9a0b1c2d3e4f5a6b",
    "bob-agent": "MK-bob-5e4d3c2b1a09f8e7d6c5b4a39281706f",
    "staging-agent": "MK-staging-0f1e2d3c4b5a69788796a5b4c3d2e1f0",
}
CONFIG_SECRETS = {
    "redpillApiKey": "RP-shared-redpill-c0ffee11c0ffee22c0ffee33",
    "tenantSecrets.bob-agent.redpillApiKey": "RP-bob-own-redpill-d00d44d00d55d00d66",
    "muxMasterKey": "MUXMK-5a5a5a5a1b1b1b1b2c2c2c2c3d3d3d3d4e4e",
    "muxRegisterKey": "MUXREG-explicit-9e8d7c6b5a4f3e2d1c0b",
    "muxTelegramBotToken": "987654:TG-distinctive-telegram-token-QQQQ",
    "muxDiscordBotToken": "DISCORD-distinctive-bot-token-ZZZZ-1234",
}


@dataclass
class ScanRun:
    workspace: PulumiWorkspace
    phala: PhalaCloudEmulator
    cloudflare: CloudflareEmulator
    outputs: dict[str, str] = field(default_factory=dict)  # channel -> captured text
    secrets: dict[str, str] = field(default_factory=dict)  # label -> value

    def record(self, channel: str, *args: str) -> None:
        result = self.workspace.run(*args).expect_success()
        self.outputs[channel] = result.stdout + "\n" + result.stderr

    def hits(self, secrets: dict[str, str]) -> dict[str, list[Hit]]:
        workspace = self.workspace
        by_channel = {
            channel: scan_text(channel, text, secrets) for channel, text in self.outputs.items()
        }
        by_channel["stack config file"] = scan_files(
            [workspace.stack_file(STACK)], secrets, base=workspace.root
        )
        for channel, root in (
            ("state files (file:// backend)", workspace.backend_dir),
            ("temp directory (engine, plugin and driver files and logs)", workspace.tmpdir),
            ("PULUMI_HOME", workspace.pulumi_home),
        ):
            by_channel[channel] = scan_files(files_under([root]), secrets, base=workspace.root)
        return by_channel


def stack_config() -> tuple[dict[str, Any], list[str]]:
    config: dict[str, Any] = {
        "cloudflareAccountId": ACCOUNT_ID,
        "openclawImage": IMAGE,
        "muxImage": MUX_IMAGE,
        "phalaSshPublicKey": SSH_KEY,
        "phalaVerifyHealth": False,
        "muxName": "scan-mux",
        "muxChannels": ["telegram", "discord"],
        "muxTelegramBotUsername": CANARY.replace("-", "_"),
        "tenants": [
            {"name": "alice-agent", "storage": "s3"},
            {"name": "bob-agent", "storage": "s3", "jurisdiction": "eu"},
            {"name": "staging-agent", "storage": "local"},
        ],
        "tenantSecrets": {name: {"masterKey": key} for name, key in TENANT_KEYS.items()},
    }
    config["tenantSecrets"]["bob-agent"]["redpillApiKey"] = CONFIG_SECRETS[
        "tenantSecrets.bob-agent.redpillApiKey"
    ]
    secret_keys = ["tenantSecrets"]
    for key, value in CONFIG_SECRETS.items():
        if not key.startswith("tenantSecrets."):
            config[key] = value
            secret_keys.append(key)
    return config, secret_keys


def every_secret(run: ScanRun) -> dict[str, str]:
    secrets = {f"config {key}": value for key, value in CONFIG_SECRETS.items()}
    for tenant, key in TENANT_KEYS.items():
        secrets[f"{tenant} masterKey"] = key
        keys = derive_tenant_keys(key)
        secrets[f"{tenant} gateway token"] = keys.gateway_token
        secrets[f"{tenant} rclone password"] = keys.rclone_crypt_password
        secrets[f"{tenant} rclone salt"] = keys.rclone_crypt_salt
        env = run.phala.decrypted_env(run.phala.cvm_by_name(tenant))
        secrets[f"{tenant} OPENCLAW_CONFIG_B64"] = env["OPENCLAW_CONFIG_B64"]
    mux = derive_mux_keys(CONFIG_SECRETS["muxMasterKey"])
    secrets["mux derived register key (unused: explicit wins)"] = mux.register_key
    secrets["mux admin token"] = mux.admin_token
    secrets["mux JWT private key"] = mux.jwt_private_key_pem
    secrets["mux JWT private key (one-line form)"] = mux_jwt_key.env_value(mux.jwt_private_key_pem)
    for token_id, token in run.cloudflare.tokens().items():
        value = run.cloudflare.token_value(token_id)
        secrets[f"{token['name']} value"] = value
        secrets[f"{token['name']} S3 secret"] = hashlib.sha256(value.encode()).hexdigest()
    secrets["operator Phala API key"] = DEFAULT_API_KEY
    secrets["operator Cloudflare API token"] = DEFAULT_API_TOKEN
    return secrets


@pytest.fixture(scope="module")
def scan(engine_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScanRun]:
    config, secret_keys = stack_config()
    with (
        PhalaCloudEmulator(provision_seconds=0.2, update_seconds=0.2) as phala,
        CloudflareEmulator(account_id=ACCOUNT_ID) as cloudflare,
    ):
        workspace = PulumiWorkspace(engine_dir, tmp_path_factory.mktemp("scan"), phala, cloudflare)
        try:
            run = ScanRun(workspace, phala, cloudflare)
            workspace.init_stack(STACK)
            workspace.configure(STACK, config, secret_keys)
            verbose = ("-v=9", "--logflow")  # engine and plugin logs into TMPDIR
            run.record("preview --diff", "preview", "--diff", "--stack", STACK, *verbose)
            run.record("up --diff (create)", "up", "--yes", "--diff", "--stack", STACK, *verbose)
            workspace.write_plain_config(STACK, {"openclawImage": IMAGE_V2})
            run.record("preview --diff (update)", "preview", "--diff", "--stack", STACK)
            run.record("up --diff (update)", "up", "--yes", "--diff", "--stack", STACK, *verbose)
            run.record("refresh", "refresh", "--yes", "--stack", STACK, *verbose)
            run.record("stack export", "stack", "export", "--stack", STACK)
            run.record("stack output", "stack", "output", "--stack", STACK)
            run.record("stack output --json", "stack", "output", "--json", "--stack", STACK)
            run.secrets = every_secret(run)
            yield run
        finally:
            workspace.close()


def test_no_secret_reaches_any_channel_the_engine_writes(
    scan: ScanRun, request: pytest.FixtureRequest
) -> None:
    by_channel = scan.hits(scan.secrets)
    logs = files_under([scan.workspace.tmpdir])
    lines = [
        f"secret scan: {len(scan.secrets)} secrets, each in 5 encodings; "
        f"{len(logs)} files left in the temp directory"
    ]
    lines += [f"  {channel:<62} {len(hits)} hits" for channel, hits in by_channel.items()]
    print_past_capture(request, lines)
    leaks = {channel: hits for channel, hits in by_channel.items() if hits}
    assert leaks == {}
    assert logs, "the verbose runs must have left their logs to scan"


def test_the_scan_finds_a_value_that_was_deliberately_left_plain(scan: ScanRun) -> None:
    canary = {"plain canary": CANARY.replace("-", "_")}
    by_channel = scan.hits(canary)
    for channel in ("state files (file:// backend)", "stack export", "up --diff (create)"):
        assert by_channel[channel], f"the scan missed the plain value in {channel}"


def test_show_secrets_returns_every_secret_the_stack_holds(scan: ScanRun) -> None:
    exported = scan.workspace.run("stack", "export", "--show-secrets", "--stack", STACK)
    state_text = json.dumps(shown(exported.expect_success().json))
    outputs = scan.workspace.run("stack", "output", "--json", "--show-secrets", "--stack", STACK)
    document = outputs.expect_success().json
    config = scan.workspace.run("config", "--show-secrets", "--json", "--stack", STACK)
    settings = {k.removeprefix("openclaw-phala:"): v["value"] for k, v in config.json.items()}
    for key, value in CONFIG_SECRETS.items():
        if not key.startswith("tenantSecrets."):
            assert settings[key] == value, f"config {key} does not read back"
    not_in_state = {
        # Config secrets that only feed derivations live in the stack file, not in state.
        "config muxMasterKey",
        # Derived by the image itself from the MASTER_KEY; the program never holds them.
        *(f"{tenant} rclone {what}" for tenant in TENANT_KEYS for what in ("password", "salt")),
        "mux derived register key (unused: explicit wins)",
        # Sent only in its one-line form (dstack would break the PEM's line breaks).
        "mux JWT private key",
        "operator Phala API key",
        "operator Cloudflare API token",
    }
    for label, value in scan.secrets.items():
        if label not in not_in_state:
            assert json.dumps(value)[1:-1] in state_text, f"{label} is missing from the state"
    assert json.dumps(scan.secrets["mux JWT private key"])[1:-1] not in state_text
    assert scan.secrets["mux JWT private key (one-line form)"] in state_text
    for tenant, key in TENANT_KEYS.items():
        assert document["tenantSecrets"][tenant]["gatewayToken"] == (
            derive_tenant_keys(key).gateway_token
        )
    for tenant in ("alice-agent", "bob-agent"):
        s3 = document["tenantSecrets"][tenant]
        value = scan.cloudflare.token_value(s3["s3AccessKeyId"])
        assert s3["s3SecretAccessKey"] == hashlib.sha256(value.encode()).hexdigest()
    assert document["muxSecrets"]["registerKey"] == CONFIG_SECRETS["muxRegisterKey"]
    assert document["muxSecrets"]["adminToken"] == (
        derive_mux_keys(CONFIG_SECRETS["muxMasterKey"]).admin_token
    )

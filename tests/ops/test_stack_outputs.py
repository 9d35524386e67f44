"""Loading and validating the v1 stack-output contract."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ops import ConfigError
from ops.stack_outputs import (
    StackOutputsError,
    load_stack_outputs_file,
    load_stack_outputs_from_pulumi,
    parse_stack_outputs,
)
from tests.ops.outputs_document import (
    ALICE_OPENCLAW_ID,
    ALICE_S3_SECRET_ACCESS_KEY,
    DELETE,
    MUX_ADMIN_TOKEN,
    make_outputs,
    with_changes,
    write_outputs,
)


def _error_for(document: object) -> str:
    with pytest.raises(StackOutputsError) as caught:
        parse_stack_outputs(document)
    return str(caught.value)


def test_valid_document_loads_into_typed_records() -> None:
    outputs = parse_stack_outputs(make_outputs())

    alice = outputs.tenant("alice")
    assert alice.storage_mode == "s3"
    assert alice.openclaw_id == ALICE_OPENCLAW_ID
    assert alice.inbound_url.endswith("-18789.dstack-pha-prod9.phala.network/v1/mux/inbound")
    assert outputs.tenant("carol").bucket is None
    assert outputs.secrets_for("alice").s3_secret_access_key == ALICE_S3_SECRET_ACCESS_KEY
    mux, mux_secrets = outputs.require_mux()
    assert mux.base_url.endswith("-18891.dstack-pha-prod9.phala.network")
    assert mux_secrets.admin_token == MUX_ADMIN_TOKEN


def test_records_are_frozen_and_mappings_read_only() -> None:
    outputs = parse_stack_outputs(make_outputs())
    with pytest.raises(AttributeError):
        outputs.tenant("alice").bucket = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        outputs.tenants["mallory"] = outputs.tenant("alice")  # type: ignore[index]


def test_repr_of_whole_outputs_hides_every_secret_but_shows_which_are_null() -> None:
    outputs = parse_stack_outputs(make_outputs())
    text = repr(outputs) + str(outputs.secrets_for("carol")) + repr(outputs.mux_secrets)

    for secret in (MUX_ADMIN_TOKEN, ALICE_S3_SECRET_ACCESS_KEY, "HNi1Q97Dx8nLzMZLLpFFHivnnRfVGTO5"):
        assert secret not in text
    assert "gateway_token=<redacted>" in text
    assert "s3_access_key_id=None" in repr(outputs.secrets_for("carol"))


def test_unknown_tenant_error_lists_known_tenants() -> None:
    outputs = parse_stack_outputs(make_outputs())
    with pytest.raises(StackOutputsError) as caught:
        outputs.tenant("bob")
    assert str(caught.value) == "stack outputs have no tenant 'bob'; known tenants: alice, carol"


def test_stack_outputs_errors_are_config_errors_with_exit_code_2() -> None:
    assert issubclass(StackOutputsError, ConfigError)
    assert StackOutputsError("x").exit_code == 2


@pytest.mark.parametrize(
    ("key_path", "expected"),
    [
        (("tenants",), "stack outputs have no 'tenants' output"),
        (("tenantSecrets",), "stack outputs have no 'tenantSecrets' output"),
        (("muxSecrets",), "stack output 'mux' is set but 'muxSecrets' is null; both or neither"),
        (
            ("tenants", "alice", "openclawId"),
            "stack output 'tenants.alice' is missing 'openclawId'",
        ),
        (
            ("tenantSecrets", "alice", "gatewayToken"),
            "'tenantSecrets.alice' is missing 'gatewayToken'",
        ),
        (("mux", "baseUrl"), "stack output 'mux' is missing 'baseUrl'"),
    ],
)
def test_missing_output_is_named(key_path: tuple[str, ...], expected: str) -> None:
    assert expected in _error_for(with_changes(make_outputs(), (key_path, DELETE)))


def test_misnamed_output_is_pointed_out() -> None:
    document = make_outputs()
    document["tenants"]["alice"]["openClawID"] = document["tenants"]["alice"].pop("openclawId")
    document["tenantsSecrets"] = document.pop("tenantSecrets")

    assert "(found 'tenantsSecrets': misnamed?)" in _error_for(document)
    document["tenantSecrets"] = document.pop("tenantsSecrets")
    assert _error_for(document) == (
        "stack output 'tenants.alice' is missing 'openclawId' (found 'openClawID': misnamed?)"
    )


def test_other_contract_version_is_refused() -> None:
    message = _error_for(with_changes(make_outputs(), (("contractVersion",), 2)))
    assert "contractVersion 2" in message
    assert "reads only version 1" in message


def test_wrong_type_error_names_the_field_but_never_echoes_a_secret_value() -> None:
    leaked = ["not", "a", "string", MUX_ADMIN_TOKEN]
    message = _error_for(with_changes(make_outputs(), (("muxSecrets", "adminToken"), leaked)))
    assert message == "stack output 'muxSecrets.adminToken' must be a non-empty string, got a list"


def test_empty_required_string_is_rejected() -> None:
    message = _error_for(with_changes(make_outputs(), (("tenants", "alice", "appId"), "")))
    assert (
        message
        == "stack output 'tenants.alice.appId' must be a non-empty string, got an empty string"
    )


def test_outputs_saved_without_show_secrets_get_a_hint() -> None:
    message = _error_for(with_changes(make_outputs(), (("tenantSecrets",), "[secret]")))
    assert "exported without --show-secrets" in message


def test_unsupported_storage_mode_is_rejected() -> None:
    message = _error_for(with_changes(make_outputs(), (("tenants", "alice", "storageMode"), "S3")))
    assert "'tenants.alice.storageMode' must be 's3' or 'local', got 'S3'" in message


def test_s3_tenant_needs_bucket_and_credentials() -> None:
    no_bucket = with_changes(make_outputs(), (("tenants", "alice", "bucket"), None))
    assert "'tenants.alice.bucket' is null, but storageMode is 's3'" in _error_for(no_bucket)
    no_key = with_changes(make_outputs(), (("tenantSecrets", "alice", "s3SecretAccessKey"), None))
    assert "'tenantSecrets.alice.s3SecretAccessKey' is null" in _error_for(no_key)


def test_tenant_name_must_match_its_key() -> None:
    message = _error_for(with_changes(make_outputs(), (("tenants", "alice", "name"), "alicia")))
    assert "'tenants.alice.name' is 'alicia'" in message


def test_tenant_without_secrets_entry_and_stray_secrets_entry_are_rejected() -> None:
    missing = with_changes(make_outputs(), (("tenantSecrets", "carol"), DELETE))
    assert "'tenantSecrets' has no entry for tenant 'carol'" in _error_for(missing)
    stray = make_outputs()
    stray["tenantSecrets"]["bob"] = stray["tenantSecrets"]["carol"]
    assert "'tenantSecrets' has an entry for 'bob'" in _error_for(stray)


def test_mux_and_mux_secrets_must_both_be_set_or_both_null() -> None:
    message = _error_for(with_changes(make_outputs(), (("muxSecrets",), None)))
    assert "'mux' is set but 'muxSecrets' is null" in message


def test_stack_without_mux_loads_but_pairing_needs_it() -> None:
    outputs = parse_stack_outputs(
        with_changes(make_outputs(), (("mux",), None), (("muxSecrets",), None))
    )
    assert outputs.mux is None
    with pytest.raises(StackOutputsError, match="deploys no mux-server"):
        outputs.require_mux()


def test_extra_outputs_are_ignored_for_forward_compatibility() -> None:
    document = with_changes(make_outputs(), (("someFutureOutput",), {"x": 1}))
    document["tenants"]["alice"]["newField"] = "ok"
    assert parse_stack_outputs(document).tenant("alice").name == "alice"


def test_file_loader_reports_missing_file_and_bad_json_without_quoting_content(
    tmp_path: Path,
) -> None:
    with pytest.raises(StackOutputsError, match="cannot read stack outputs file"):
        load_stack_outputs_file(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"muxSecrets": {"adminToken": "' + MUX_ADMIN_TOKEN + '"', encoding="utf-8")
    with pytest.raises(StackOutputsError) as caught:
        load_stack_outputs_file(broken)
    assert "is not valid JSON" in str(caught.value)
    assert MUX_ADMIN_TOKEN not in str(caught.value)


def test_file_loader_round_trips_a_saved_document(tmp_path: Path) -> None:
    path = write_outputs(tmp_path / "outputs.json", make_outputs())
    assert load_stack_outputs_file(path).tenant("carol").storage_mode == "local"


def _fake_pulumi(bin_dir: Path, *, stdout: str, stderr: str = "", exit_code: int = 0) -> Path:
    """A `pulumi` stand-in that records its argv and prints canned output."""
    bin_dir.mkdir()
    (bin_dir / "stdout.json").write_text(stdout, encoding="utf-8")
    (bin_dir / "stderr.txt").write_text(stderr, encoding="utf-8")
    script = bin_dir / "pulumi"
    script.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"$@\" > '{bin_dir}/argv'\n"
        f"cat '{bin_dir}/stdout.json'\n"
        f"cat '{bin_dir}/stderr.txt' >&2\n"
        f"exit {exit_code}\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_pulumi_loader_asks_for_json_with_secrets_of_the_named_stack(tmp_path: Path) -> None:
    pulumi = _fake_pulumi(tmp_path / "bin", stdout=json.dumps(make_outputs()))

    outputs = load_stack_outputs_from_pulumi("prod", pulumi_binary=str(pulumi), cwd=tmp_path)

    assert outputs.tenant("alice").openclaw_id == ALICE_OPENCLAW_ID
    argv = (tmp_path / "bin" / "argv").read_text().split()
    assert argv[:3] == ["stack", "output", "--json"]
    assert "--show-secrets" in argv
    assert argv[-2:] == ["--stack", "prod"]


def test_pulumi_loader_failure_shows_pulumis_last_error_line(tmp_path: Path) -> None:
    pulumi = _fake_pulumi(
        tmp_path / "bin", stdout="", stderr="error: no stack named 'prod' found", exit_code=255
    )
    with pytest.raises(StackOutputsError) as caught:
        load_stack_outputs_from_pulumi("prod", pulumi_binary=str(pulumi), cwd=tmp_path)
    assert str(caught.value) == (
        "'pulumi stack output' for stack 'prod' failed (exit 255): "
        "error: no stack named 'prod' found"
    )


def test_pulumi_loader_without_pulumi_cli_suggests_outputs_file(tmp_path: Path) -> None:
    missing = os.fspath(tmp_path / "no-such-pulumi")
    with pytest.raises(StackOutputsError, match="pass --outputs FILE"):
        load_stack_outputs_from_pulumi(None, pulumi_binary=missing, cwd=tmp_path)


def test_a_stack_without_a_mux_exports_neither_mux_output() -> None:
    document = make_outputs()
    del document["mux"], document["muxSecrets"]
    outputs = parse_stack_outputs(document)
    assert outputs.mux is None
    assert outputs.mux_secrets is None


def test_mux_channels_load_in_their_order() -> None:
    outputs = parse_stack_outputs(
        with_changes(make_outputs(), (("mux", "channels"), ["discord", "telegram"]))
    )
    assert outputs.mux is not None
    assert outputs.mux.channels == ("discord", "telegram")


def test_outputs_from_before_mux_channels_load_without_them() -> None:
    outputs = parse_stack_outputs(with_changes(make_outputs(), (("mux", "channels"), DELETE)))
    assert outputs.mux is not None
    assert outputs.mux.channels is None


@pytest.mark.parametrize(
    ("channels", "expected"),
    [
        ("telegram", "must be a list of channel names, got a string"),
        (["telegram", 7], "must be a list of channel names, got a list"),
        (["telegram", "signal"], "lists unknown channel 'signal'"),
        (["discord", "discord"], "lists a channel twice"),
    ],
)
def test_malformed_mux_channels_are_rejected_by_name(channels: object, expected: str) -> None:
    message = _error_for(with_changes(make_outputs(), (("mux", "channels"), channels)))
    assert message.startswith("stack output 'mux.channels' ")
    assert expected in message


def test_the_programs_own_outputs_satisfy_the_contract() -> None:
    """What __main__.py exports (evaluated under mocks) is what ops reads."""
    from plan.evaluate import run_program
    from tests.support.stack_configs import all_s3, prod_config

    for config, secret_keys in (prod_config(), all_s3(2)):
        outputs = parse_stack_outputs(run_program(config, secret_keys).plain_exports)
        assert set(outputs.tenants) == {t["name"] for t in config["tenants"]}
        for name, tenant in outputs.tenants.items():
            assert outputs.secrets_for(name).gateway_token
            assert tenant.compose_hash
        if "muxName" in config:
            assert outputs.mux is not None
            assert outputs.mux.channels == tuple(config["muxChannels"])


def test_ops_knows_the_same_channel_names_the_program_configures() -> None:
    from components.config_keys import MuxChannel
    from ops.stack_outputs import KNOWN_CHANNELS

    assert tuple(channel.value for channel in MuxChannel) == KNOWN_CHANNELS

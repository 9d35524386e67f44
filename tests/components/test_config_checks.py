"""Cross-field config checks and keys outside the project's namespace."""

from __future__ import annotations

from typing import Any

import pytest

from components import config_checks
from components.config_parser import parse_settings
from components.config_values import check_cvm_name
from components.settings import SettingsError, read_raw_config
from tests.components.test_settings import good_config, mux_config, problems_of, raw

UUID = "0b9e6a52-3c1d-4f8e-9a7b-2d4c6e8f0a1b"


def test_one_cvm_id_adopted_by_two_cvms_is_refused_on_the_second() -> None:
    config = mux_config(
        muxCvmId=UUID,
        tenants=[{"name": "alice-agent", "cvmId": UUID.upper().replace("-", "")}],
    )
    assert problems_of(config) == [
        f"openclaw-phala:tenants[0].cvmId: CVM id '{UUID.upper().replace('-', '')}' is already "
        "used by mux openclaw-mux; one CVM cannot be adopted twice"
    ]


@pytest.mark.parametrize("prefix", ["a/../b", "./data", "data/.", ".."])
def test_an_s3_prefix_with_a_dot_segment_is_refused(prefix: str) -> None:
    config = good_config(tenants=[{"name": "alice-agent", "s3Prefix": prefix}])
    (problem,) = problems_of(config)
    assert problem.startswith("openclaw-phala:tenants[0].s3Prefix (tenant alice-agent): has a '")


def test_dots_inside_a_prefix_segment_are_fine() -> None:
    config = good_config(tenants=[{"name": "alice-agent", "s3Prefix": "v1.2/..data"}])
    assert parse_settings(raw(config)).tenants[0].r2.s3_prefix == "v1.2/..data"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("key", "namespace_text"),
    [
        ("openclaw_phala:muxName", "is under namespace 'openclaw_phala'"),
        ("openclaw-phal:tenants", "is under namespace 'openclaw-phal'"),
        ("OpenClaw-Phala:muxName", "is under namespace 'OpenClaw-Phala'"),
    ],
)
def test_a_key_under_a_mistyped_namespace_is_answered_with_a_did_you_mean(
    key: str, namespace_text: str
) -> None:
    engine_config: dict[str, Any] = {
        f"openclaw-phala:{name}": value for name, value in raw(good_config()).values.items()
    }
    engine_config[key] = "x"
    engine_config["cloudflare:apiToken"] = "a provider's own key is left alone"
    settings_raw = read_raw_config(engine_config, lambda _: True)
    with pytest.raises(Exception) as info:
        parse_settings(settings_raw)
    name = key.rpartition(":")[2]
    expected = f"{key}: {namespace_text}, so the program never reads it; did you mean "
    assert f"  - {expected}'openclaw-phala:{name}'?" in str(info.value)
    assert "cloudflare:apiToken" not in str(info.value)


def test_an_overlong_ssh_key_and_instance_type_are_refused_by_length() -> None:
    config = good_config(
        phalaSshPublicKey="ssh-ed25519 " + "A" * 9000,
        tenants=[{"name": "alice-agent", "instanceType": "tdx." + "a" * 100}],
    )
    problems = problems_of(config)
    assert (
        "openclaw-phala:phalaSshPublicKey: is 9012 characters long; at most 8192" in (problems[0])
    )
    assert problems[1].startswith(
        "openclaw-phala:tenants[0].instanceType (tenant alice-agent): is 104 characters long"
    )


def test_an_inherited_bad_instance_type_is_blamed_on_phala_instance_type_only() -> None:
    problems = problems_of(mux_config(phalaInstanceType="not a type"))
    assert problems == [
        "openclaw-phala:phalaInstanceType: must be a Phala instance type such as tdx.small "
        "or tdx.medium"
    ]


def test_a_non_latin_letter_is_named_not_called_a_missing_letter() -> None:
    reason = check_cvm_name("élan-agent")
    assert reason is not None
    assert "must start with a letter" not in reason
    assert "'é' (latin small letter e with acute) at position 1 is a non-ASCII letter" in reason
    cyrillic = check_cvm_name("alic\u0435-agent")  # a Cyrillic letter that looks like e
    assert cyrillic is not None and "cyrillic small letter ie" in cyrillic
    assert check_cvm_name("1alice") == "must start with a letter (starts with '1')"


def test_a_key_without_a_namespace_is_the_projects_own_as_pulumi_reads_it() -> None:
    # `muxName:` in a stack file reaches the program as openclaw-phala:muxName (checked
    # under the real engine in tests/engine/test_quick_start.py), so it is not misplaced.
    assert config_checks.misplaced_keys(["muxName"], "openclaw-phala", ["muxName"]) == []
    # Another tool's own key (a name that is not ours) is not ours to judge.
    assert config_checks.misplaced_keys(["mycorp:region"], "openclaw-phala", ["muxName"]) == []


@pytest.mark.parametrize(
    ("key", "where"),
    [
        ("openclaw:tenants", "is under namespace 'openclaw'"),
        ("phala:muxName", "is under namespace 'phala'"),
        ("mycorp:muxName", "is under namespace 'mycorp'"),
        (":tenants", "has an empty namespace"),
        (":phalaRegoin", "has an empty namespace"),
    ],
)
def test_one_of_our_keys_under_any_other_namespace_is_refused_naming_the_right_spelling(
    key: str, where: str
) -> None:
    # Issue 24: `openclaw:tenants` passed the near-miss check (too far from our name) and
    # the stack planned zero tenants; `:tenants` (an empty namespace) was skipped.
    engine_config: dict[str, Any] = {
        f"openclaw-phala:{name}": value for name, value in raw(good_config()).values.items()
    }
    engine_config[key] = "x"
    with pytest.raises(SettingsError) as info:
        parse_settings(read_raw_config(engine_config, lambda _: True))
    name = key.rpartition(":")[2]
    right = name if name != "phalaRegoin" else "phalaRegion"
    assert f"  - {key}: {where}, so the program never reads it; did you mean " in str(info.value)
    assert f"'openclaw-phala:{right}'?" in str(info.value)


def test_one_of_our_keys_where_pulumi_reads_the_namespace_is_a_warning_not_a_refusal() -> None:
    engine_config: dict[str, Any] = {
        f"openclaw-phala:{name}": value for name, value in raw(good_config()).values.items()
    }
    engine_config["cloudflare:tenants"] = "[]"
    secret = {"openclaw-phala:redpillApiKey", "openclaw-phala:tenantSecrets"}
    settings = parse_settings(read_raw_config(engine_config, secret.__contains__))
    assert settings.warnings == (
        "cloudflare:tenants: is under namespace 'cloudflare', so the cloudflare provider reads "
        "it and this program does not; did you mean 'openclaw-phala:tenants'?",
    )

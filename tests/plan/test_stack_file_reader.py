"""The plan's stack-file reader, without the engine: values pinned from what Pulumi
v3.274.0 handed the program for the same text (tests/engine/test_stack_file_parity.py
re-checks every one of them against the real `pulumi preview`)."""

from __future__ import annotations

import math

import pytest

from plan.evaluate import REPO_ROOT
from plan.go_values import go_float_g, go_json_float
from plan.stack_file import Encrypted, StackFileError, declared_keys, engine_config

DECLARED = declared_keys(REPO_ROOT / "Pulumi.yaml")


def read(body: str) -> dict[str, object]:
    values = engine_config(body, "openclaw-phala", "dev", DECLARED).values
    return {key.removeprefix("openclaw-phala:"): value for key, value in values.items()}


@pytest.mark.parametrize(
    ("written", "received"),
    [
        ("yes", "yes"),
        ("on", "on"),
        ("~", ""),
        ("", ""),
        ("040", "32"),
        ("0x40", "64"),
        ("0o17", "15"),
        ("1_000", "1000"),
        ("10:00", "10:00"),
        ("1.0", "1"),
        ("1e30", "1e+30"),
        ("True", "true"),
        ("2024-01-01", "2024-01-01 00:00:00 +0000 UTC"),
        ("2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.1 -0500 -0500"),
        ("!foo bar", "bar"),
        ('"040"', "040"),
        ("18446744073709551615", "18446744073709551615"),
        ("99999999999999999999", "100000000000000000000"),
    ],
)
def test_a_scalar_reaches_the_program_as_pulumi_writes_it(written: str, received: str) -> None:
    assert read(f"config:\n  openclaw-phala:x: {written}\n")["x"] == received


def test_objects_keep_json_values_and_encrypted_leaves() -> None:
    values = read(
        "config:\n  openclaw-phala:x: {a: 2024-01-01, b: 1e3, c: null, d: 1.5, 5: k}\n"
        "  openclaw-phala:y: [1, {secure: 5}, {secure: v1:abc}]\n"
    )
    assert values["x"] == {
        "a": "2024-01-01 00:00:00 +0000 UTC",
        "b": 1000,
        "c": None,
        "d": 1.5,
        "5": "k",
    }
    assert values["y"] == [1, {"secure": 5}, Encrypted("v1:abc")]


def test_only_keys_holding_an_encrypted_value_are_secret() -> None:
    read_config = engine_config(
        "config:\n  openclaw-phala:redpillApiKey: plain\n"
        "  openclaw-phala:tenantSecrets: {a: {masterKey: {secure: v1:x}}}\n",
        "openclaw-phala",
        "dev",
        DECLARED,
    )
    assert read_config.secret_keys == {"openclaw-phala:tenantSecrets"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("config:\n  a: 1\n  a: 2\n", 'line 3: mapping key "a" already defined at line 2'),
        ("config:\n  openclaw-phala:phalaDevOs: yes\n", "must be of type 'boolean'"),
        ("config:\n  openclaw-phala:phalaDiskSizeGb: 4.5\n", "must be of type 'integer'"),
        ("config:\n  a:b:c:d: x\n", "could not parse a:b:c:d as a configuration key"),
        ("config:\n  muxName: a\n  openclaw-phala:muxName: b\n", "Pulumi would keep one"),
        ("config:\n  openclaw-phala:x: .nan\n", "json: unsupported value: NaN"),
        ("a: &a [*a]\n", "anchor 'a' value contains itself"),
        ("a: " + "[" * 1200 + "]" * 1200 + "\n", "nests collections more than 100 levels deep"),
    ],
)
def test_files_pulumi_refuses_are_refused_in_one_line(body: str, message: str) -> None:
    with pytest.raises(StackFileError) as raised:
        read(body)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_go_number_formatting() -> None:
    assert go_float_g(1e6) == "1e+06"
    assert go_float_g(123456.0) == "123456"
    assert go_float_g(1.5e-5) == "1.5e-05"
    assert go_json_float(1e21) == "1e+21"
    assert go_json_float(1e-7) == "1e-7"
    assert go_json_float(1e20) == "100000000000000000000"
    with pytest.raises(ValueError, match="unsupported value: \\+Inf"):
        go_json_float(math.inf)

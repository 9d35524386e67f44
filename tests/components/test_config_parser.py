"""Issue 24's config findings, each pinned: every problem in one pass, structure plain,
mux settings without a mux, weak values refused with their limit, `+40` as Pulumi reads
it, an empty config named as such, and no catch-all for deep nesting."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.config_keys import SCALAR_KEYS
from components.config_parser import parse_settings
from components.settings import EmptyConfigError, RawConfig, SettingsError
from tests.components.test_settings import good_config, mux_config, problems_of, raw
from tests.support.stack_configs import master_key_for


def test_a_tenant_with_its_own_error_is_still_checked_for_a_duplicate_name_and_secrets() -> None:
    # Before: a tenant with any error was left out of the duplicate-name and secrets checks,
    # so fixing a config took several rounds of `pulumi preview`.
    config = good_config(
        tenants=[
            {"name": "alice-agent"},
            {"name": "Alice-Agent", "jurisdiction": "mars"},
            {"name": "bob-agent", "storage": "tape"},
        ],
        tenantSecrets={"alice-agent": {"masterKey": master_key_for("alice-agent")}},
    )
    problems = problems_of(config)
    assert problems == [
        "openclaw-phala:tenants[1].jurisdiction (tenant Alice-Agent): must be one of: "
        "default, eu, fedramp",
        "openclaw-phala:tenants[1].name: duplicate tenant name 'Alice-Agent' (also tenants[0]); "
        "names must be unique ignoring case",
        "openclaw-phala:tenantSecrets.Alice-Agent.masterKey: is missing: every tenant needs its "
        "MASTER_KEY (a running tenant keeps its current key, or its encrypted state is lost); "
        "set it with: pulumi config set --secret --path 'tenantSecrets.Alice-Agent.masterKey' "
        "<key>",
        "openclaw-phala:tenants[2].storage (tenant bob-agent): must be 's3' or 'local'",
        "openclaw-phala:tenantSecrets.bob-agent.masterKey: is missing: every tenant needs its "
        "MASTER_KEY (a running tenant keeps its current key, or its encrypted state is lost); "
        "set it with: pulumi config set --secret --path 'tenantSecrets.bob-agent.masterKey' <key>",
    ]


def test_an_invalid_tenant_still_makes_the_image_and_account_required() -> None:
    config = good_config(tenants=[{"name": "x"}], tenantSecrets={})
    del config["openclawImage"], config["cloudflareAccountId"]
    problems = problems_of(config)
    assert "openclaw-phala:openclawImage: is required: the stack has tenants to deploy" in problems


@pytest.mark.parametrize("value", ["+40", "040", "-0", "40"])
def test_an_integer_is_read_as_pulumi_reads_it(value: str) -> None:
    # Pulumi's ValidateConfigValue reads integers with Go's strconv.Atoi (sdk/go/common/
    # workspace/project.go): `+40` is 40. Before, the program refused it.
    config = good_config(phalaDiskSizeGb=value, phalaWaitTimeoutSeconds="+600")
    if int(value) < 10:
        assert problems_of(config) == [
            "openclaw-phala:phalaDiskSizeGb: must be between 10 and 2048 GB"
        ]
        return
    settings = parse_settings(raw(config))
    assert settings.phala.disk_size_gb == int(value)
    assert settings.phala.wait_timeout_seconds == 600


@pytest.mark.parametrize("value", ["4_0", " 40", "0x28", "40.5", "", "9223372036854775808"])
def test_what_atoi_refuses_is_refused(value: str) -> None:
    assert problems_of(good_config(phalaDiskSizeGb=value)) == [
        "openclaw-phala:phalaDiskSizeGb: must be a whole number (optionally signed, decimal digits)"
    ]


@pytest.mark.parametrize(
    ("config", "secret", "key"),
    [
        (mux_config(), {"muxName"}, "muxName"),
        (mux_config(muxCvmId="0b9e6a52-3c1d-4f8e-9a7b-2d4c6e8f0a1b"), {"muxCvmId"}, "muxCvmId"),
        (good_config(), {"tenants"}, "tenants"),
        (good_config(), {"phalaInstanceType"}, "phalaInstanceType"),
        (good_config(), {"cloudflareAccountId"}, "cloudflareAccountId"),
    ],
)
def test_a_structural_key_stored_as_a_secret_is_refused_naming_it(
    config: dict[str, Any], secret: set[str], key: str
) -> None:
    config.setdefault("phalaInstanceType", "tdx.medium")
    secret_keys = secret | {"tenantSecrets", "redpillApiKey", "muxMasterKey", "muxTelegramBotToken"}
    problems = problems_of(config, secret_keys)
    how = f"pulumi config set {key} <value>"
    assert problems == [
        f"openclaw-phala:{key}: must be plain, not a secret: it names or shapes what is "
        f"deployed, which shows in resource names, diffs and the offline plan; set it with: {how}"
    ]


def test_the_plan_names_the_encrypted_leaf_and_never_its_stand_in() -> None:
    # An encrypted tenant name: the plan sees only a placeholder, and must not go on to
    # complain about `tenantSecrets.placeholder-....masterKey`.
    config = good_config(
        tenants=[{"name": "placeholder-" + "a" * 40}, {"name": "bob-agent", "storage": "x"}],
        tenantSecrets={"alice-agent": {"masterKey": master_key_for("alice-agent")}},
    )
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    with pytest.raises(SettingsError) as info:
        parse_settings(
            RawConfig(
                values=values,
                secret_keys=frozenset({"tenants", "tenantSecrets", "redpillApiKey"}),
                encrypted_paths=frozenset({"tenants[0].name"}),
            )
        )
    problems = [str(p) for p in info.value.problems]
    assert problems[0] == (
        "openclaw-phala:tenants[0].name: must be plain, not a secret: it names or shapes what "
        "is deployed, which shows in resource names, diffs and the offline plan; set it with: "
        "pulumi config set --path 'tenants[0].name' <value>"
    )
    assert not any("placeholder" in problem for problem in problems), problems
    assert "openclaw-phala:tenants[1].storage (tenant bob-agent): must be 's3' or 'local'" in (
        problems
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("muxChannels", ["carrier-pigeon"]),
        ("muxInstanceType", "not a type"),
        ("muxCvmId", "nope"),
        ("muxTelegramBotUsername", "my_bot"),
        ("muxImage", "h4x3rotab/openclaw-mux@sha256:" + "b" * 64),
    ],
)
def test_a_mux_setting_without_mux_name_is_refused_naming_it(key: str, value: Any) -> None:
    problems = problems_of(good_config(**{key: value}))
    assert problems == [
        f"openclaw-phala:{key}: is set but muxName is empty, so no mux is deployed here and "
        "nothing reads it; remove it, or set muxName"
    ]


def test_a_leftover_mux_opt_in_without_a_mux_is_a_warning() -> None:
    settings = parse_settings(raw(good_config(muxAllowDataLoss="true")))
    assert settings.warnings == (
        "openclaw-phala:muxAllowDataLoss: is true but muxName is empty, so it applies to "
        "nothing; remove it",
    )


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("phalaRegion", "A" * 100_000, "phalaRegion: is 100000 characters long; at most 64"),
        ("phalaOsImage", "d" * 100_000, "phalaOsImage: is 100000 characters long; at most 128"),
        (
            "phalaSshPublicKey",
            "ssh-ed25519 x",
            "phalaSshPublicKey: its key data after 'ssh-ed25519 ' is not base64",
        ),
        (
            "phalaSshPublicKey",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJvcGVuY2xhdy1waGFsYS1leGFtcGxlLWtleS0x x@y",
            "phalaSshPublicKey: its key data is cut short",
        ),
        (
            "phalaSshPublicKey",
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAINhi0jlwRMlyDk84dxJhT4aEg5cS8yzB42YoIMM/tp/A",
            "phalaSshPublicKey: its key data is not an OpenSSH ssh-rsa public key",
        ),
        (
            "openclawImage",
            "a/" * 200 + "b@sha256:" + "a" * 64,
            "openclawImage: has a repository name that is 401 characters long; at most 255",
        ),
        ("redpillApiKey", "r" * 5000, "redpillApiKey: is 5000 characters long; at most 4096"),
    ],
)
def test_a_weak_value_is_refused_with_its_limit(key: str, value: str, expected: str) -> None:
    problems = problems_of(good_config(**{key: value}))
    assert any(problem.startswith(f"openclaw-phala:{expected}") for problem in problems), problems


def test_too_many_tenants_are_refused_with_the_limit() -> None:
    tenants = [{"name": f"tenant-{i:04d}"} for i in range(1001)]
    assert problems_of(good_config(tenants=tenants, tenantSecrets={})) == [
        "openclaw-phala:tenants: lists 1001 tenants; at most 1000"
    ]


@pytest.mark.parametrize(
    "values",
    [
        {},  # an empty stack file (or config: null) as the program sees it
        {
            key.name: json.dumps(key.default)
            if key.type == "array"
            else str(key.default).lower()
            if key.type == "boolean"
            else str(key.default)
            for key in SCALAR_KEYS
        },  # defaults only
    ],
    ids=["nothing", "only-pulumi-yaml-defaults"],
)
def test_a_config_that_sets_nothing_gets_its_own_one_line_message(values: dict[str, str]) -> None:
    # Before: reported as a missing SSH key, as if one setting were missing.
    with pytest.raises(EmptyConfigError) as info:
        parse_settings(RawConfig(values=values, secret_keys=frozenset()))
    assert "\n" not in str(info.value)
    assert "sets no openclaw-phala config at all" in str(info.value)


@pytest.mark.parametrize("depth", [10, 500, 900, 5000])
def test_deeply_nested_tenants_are_a_problem_naming_the_key_never_an_error(depth: int) -> None:
    nested = "[" * depth + "]" * depth
    problems = problems_of({**good_config(), "tenants": nested, "muxChannels": nested})
    assert all(
        p.startswith(
            ("openclaw-phala:tenants", "openclaw-phala:muxChannels", "openclaw-phala:tenantSecrets")
        )
        for p in problems
    ), problems

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from components import compose
from components.cvm_env import mux_env, tenant_env

IMAGE = "h4x3rotab/openclaw-cvm@sha256:" + "c" * 64


def test_openclaw_compose_pins_the_image_and_keeps_the_cvm_layout() -> None:
    document = yaml.safe_load(compose.openclaw_compose(IMAGE))
    service = document["services"]["openclaw"]
    assert service["image"] == IMAGE
    assert service["ports"] == ["1022:22", "18789:18789"]
    assert "openclaw_data:/data" in service["volumes"]
    assert "docker_data:/var/lib/docker" in service["volumes"]
    assert "/home/root/.ssh:/root/.ssh:ro" in service["volumes"]
    assert service["privileged"] is True
    assert service["restart"] == "unless-stopped"
    assert set(document["volumes"]) == {"openclaw_data", "docker_data"}


def test_mux_compose_exposes_18891_with_persistent_volumes() -> None:
    document = yaml.safe_load(compose.mux_compose(IMAGE))
    service = document["services"]["mux-server"]
    assert service["ports"] == ["1022:22", "18891:18891"]
    assert "mux_data:/data" in service["volumes"]
    assert "mux_credentials:/root/.openclaw/credentials" in service["volumes"]
    assert service["environment"]["MUX_OPENCLAW_ACCOUNT_ID"] == "mux"


def test_bot_tokens_are_optional_in_the_mux_compose() -> None:
    environment = yaml.safe_load(compose.mux_compose(IMAGE))["services"]["mux-server"][
        "environment"
    ]
    assert environment["TELEGRAM_BOT_TOKEN"] == "${TELEGRAM_BOT_TOKEN:-}"
    assert environment["DISCORD_BOT_TOKEN"] == "${DISCORD_BOT_TOKEN:-}"
    assert environment["MUX_ADMIN_TOKEN"].startswith("${MUX_ADMIN_TOKEN:?")


def test_every_tenant_env_var_reaches_the_container() -> None:
    env = tenant_env(
        "m" * 40,
        "r",
        s3=None,
        openclaw_config_b64="e30=",
    )
    forwarded = compose.forwarded_env_names(compose.openclaw_compose(IMAGE))
    s3_names = {"S3_BUCKET", "S3_PREFIX", "S3_ENDPOINT", "S3_PROVIDER", "S3_REGION"}
    assert set(env.values) <= forwarded
    assert s3_names | {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= forwarded


def test_every_mux_env_var_reaches_the_container() -> None:
    env = mux_env("r", "a", "j", "t", "d", "bot_user")
    assert set(env.values) <= compose.forwarded_env_names(compose.mux_compose(IMAGE))


@pytest.mark.parametrize(
    ("render", "template"),
    [
        (compose.openclaw_compose, compose.OPENCLAW_TEMPLATE),
        (compose.mux_compose, compose.MUX_TEMPLATE),
    ],
)
def test_rendering_is_the_reviewed_template_byte_for_byte_with_only_the_image_pinned(
    render: Callable[[str], str], template: str
) -> None:
    # Not re-serialized: comments, key order and quoting stay as reviewed, so the compose
    # hash only changes when the template or the image does.
    text = (compose.COMPOSE_DIR / template).read_text(encoding="utf-8")
    assert render(IMAGE) == text.replace("IMAGE_SET_BY_PROGRAM", IMAGE)


def test_template_without_its_service_is_rejected() -> None:
    with pytest.raises(compose.ComposeTemplateError):
        compose.render_compose(compose.OPENCLAW_TEMPLATE, "not-the-service", IMAGE)

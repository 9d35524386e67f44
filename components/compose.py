"""Rendering the docker-compose files in compose/ that `phala deploy` receives.

The templates are committed; the program only pins the image. The rendered
text is a plain resource input, so a preview diff shows exactly what changes.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Final

import yaml

COMPOSE_DIR: Final = Path(__file__).resolve().parent.parent / "compose"
OPENCLAW_TEMPLATE: Final = "openclaw.yml"
MUX_TEMPLATE: Final = "mux.yml"
OPENCLAW_SERVICE: Final = "openclaw"
MUX_SERVICE: Final = "mux-server"
_IMAGE_PLACEHOLDER: Final = "IMAGE_SET_BY_PROGRAM"
# `$$` is compose's escape for a literal `$` (a shell's, in a command): matched first so
# that a `$${NAME}` meant for the shell is not taken for a compose reference.
_ENV_REFERENCE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\})")


class ComposeTemplateError(ValueError):
    pass


@cache  # pure in its arguments; hundreds of tenants share one image
def render_compose(template: str, service: str, image: str) -> str:
    """Return the template's text with the service image pinned to `image`."""
    text = (COMPOSE_DIR / template).read_text(encoding="utf-8")
    if text.count(_IMAGE_PLACEHOLDER) != 1:
        raise ComposeTemplateError(f"compose/{template} must contain one {_IMAGE_PLACEHOLDER}")
    rendered = text.replace(_IMAGE_PLACEHOLDER, image)
    document = yaml.safe_load(rendered)
    services = document.get("services", {})
    if list(services) != [service] or services[service].get("image") != image:
        raise ComposeTemplateError(f"compose/{template} must define exactly service {service}")
    return rendered


def openclaw_compose(image: str) -> str:
    return render_compose(OPENCLAW_TEMPLATE, OPENCLAW_SERVICE, image)


def mux_compose(image: str) -> str:
    return render_compose(MUX_TEMPLATE, MUX_SERVICE, image)


def forwarded_env_names(compose_text: str) -> frozenset[str]:
    """Names of the CVM env vars the compose passes into its container."""
    return frozenset(name for name in _ENV_REFERENCE.findall(compose_text) if name)

"""Nothing the sandbox runs may reach a vendor: the checks made before anything starts.

Every process the sandbox starts gets an environment built from scratch (PATH, a private
HOME and the local endpoints), so the caller's credentials are never handed on, and a
private HOME means no `~/.phala-cloud/credentials.json` is read either. On top of that,
the sandbox refuses to start when the caller's shell is armed for production: a vendor
credential, or a vendor endpoint or state backend that is not on this machine. A command
run in the wrong shell then stops at once, naming each variable, instead of relying on the
scrubbing alone.

A stack file handed to `rehearse` may carry the cloudflare provider's own settings
(`cloudflare:apiToken`, `cloudflare:baseUrl`...): those would win over the local API's
endpoint and token, so they are taken out of the rehearsal's copy (`provider_settings`),
and said so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

# Credentials: refused whenever set.
VENDOR_CREDENTIALS = (
    "PHALA_CLOUD_API_KEY",
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_API_KEY",
    "CLOUDFLARE_EMAIL",
    "CLOUDFLARE_API_USER_SERVICE_KEY",
)
# Endpoints: refused unless they name this machine.
VENDOR_ENDPOINTS = ("PHALA_CLOUD_API_PREFIX", "CLOUDFLARE_BASE_URL")
BACKEND_URL = "PULUMI_BACKEND_URL"
LOOPBACK_HOSTS = frozenset({"localhost", "::1"})
# The provider's configuration namespace in a stack file.
CLOUDFLARE_NAMESPACE = "cloudflare:"


def is_loopback_url(url: str) -> bool:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def environment_problems(environ: Mapping[str, str]) -> list[str]:
    """Every vendor credential or non-local endpoint in the caller's environment."""
    problems = [
        f"{name} is set (a vendor credential)"
        for name in VENDOR_CREDENTIALS
        if environ.get(name, "").strip()
    ]
    for name in VENDOR_ENDPOINTS:
        value = environ.get(name, "").strip()
        if value and not is_loopback_url(value):
            problems.append(
                f"{name} points at {urlsplit(value).hostname or value}, not this machine"
            )
    backend = environ.get(BACKEND_URL, "").strip()
    if backend and not backend.startswith("file://"):
        scheme = urlsplit(backend).scheme or backend
        problems.append(
            f"{BACKEND_URL} names a state backend that is not a local folder ({scheme}://)"
        )
    return problems


def refusal(command: str, problems: list[str]) -> str:
    listed = "\n".join(f"  - {problem}" for problem in problems)
    unset = " ".join(f"-u {name}" for name in sorted({p.split(" ", 1)[0] for p in problems}))
    return (
        f"sandbox {command}: refusing to start: this shell is set up to reach a vendor, and "
        f"nothing the sandbox runs may:\n{listed}\n"
        "The sandbox never uses these (it runs everything against local APIs, with a state "
        f"folder of its own); unset them for this command: `env {unset} ./scripts/sandbox "
        f"{command} ...`"
    )


def provider_settings(document: Mapping[str, Any]) -> list[str]:
    """The cloudflare provider's settings in a stack file's config (names only)."""
    config = document.get("config") or {}
    if not isinstance(config, Mapping):
        return []
    return sorted(key for key in config if str(key).startswith(CLOUDFLARE_NAMESPACE))

"""Which provider plugins the sandbox runs: the real ones where an operator's machine has
them, else the local stand-ins (standins/, see standins/FIDELITY.md).

A real plugin is looked for where the engine itself would find it after a normal `pulumi`
install: in the operator's plugin cache (`$PULUMI_HOME/plugins`, default `~/.pulumi`, as
`resource-<name>-v<version>/pulumi-resource-<name>` at exactly the version the pinned
Python SDK asks for), then on PATH (`pulumi-resource-<name>`, which the engine would take
as an "ambient" plugin whatever its version). Each found one is linked into the sandbox's
own plugin cache. The real cloudflare provider is pointed at the local API by its
documented `CLOUDFLARE_BASE_URL` (the provider's `cloudflare:baseUrl`); the real command
provider runs our deploy driver, whose `PHALA_CLOUD_API_PREFIX` names the local Phala API.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

PLUGIN_CHOICES = ("auto", "standins")


@dataclass(frozen=True)
class ProviderPlugin:
    """A resource provider plugin the program needs, at the version its Python SDK asks for.

    `real` is the real plugin's binary when one was found (sandbox/plugins.py); without it
    the stand-in script `standins/<standin>` plays the plugin."""

    name: str
    version: str
    standin: str
    real: Path | None = None

    @property
    def cache_dir_name(self) -> str:
        return f"resource-{self.name}-v{self.version}"

    @property
    def binary_name(self) -> str:
        return f"pulumi-resource-{self.name}"


# The versions the pinned Python SDKs ask for (requirements.txt: pulumi_command 1.2.1,
# pulumi_cloudflare 6.17.0).
STANDIN_PROVIDERS = (
    ProviderPlugin("command", "1.2.1", "command_provider.py"),
    ProviderPlugin("cloudflare", "6.17.0", "cloudflare_provider.py"),
)


@dataclass(frozen=True)
class PluginChoice:
    plugin: ProviderPlugin
    where: str  # "plugin cache", "PATH" or "stand-in"


def operator_plugin_cache(environ: Mapping[str, str]) -> Path:
    home = environ.get("PULUMI_HOME", "").strip()
    if home:
        return Path(home).expanduser() / "plugins"
    return Path(environ.get("HOME", "~")).expanduser() / ".pulumi" / "plugins"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_real(plugin: ProviderPlugin, environ: Mapping[str, str]) -> PluginChoice | None:
    cache = operator_plugin_cache(environ)
    cached = cache / plugin.cache_dir_name / plugin.binary_name
    # An install under way (or one that failed half way) leaves a `.partial` marker.
    if _executable(cached) and not (cache / f"{plugin.cache_dir_name}.partial").exists():
        return PluginChoice(replace(plugin, real=cached.resolve()), "plugin cache")
    on_path = shutil.which(plugin.binary_name, path=environ.get("PATH", ""))
    if on_path:
        return PluginChoice(replace(plugin, real=Path(on_path).resolve()), "PATH")
    return None


def choose_plugins(environ: Mapping[str, str], mode: str = "auto") -> list[PluginChoice]:
    """Per provider: the real plugin if found (unless `mode` is "standins"), else the
    stand-in."""
    chosen = []
    for plugin in STANDIN_PROVIDERS:
        found = find_real(plugin, environ) if mode == "auto" else None
        chosen.append(found or PluginChoice(plugin, "stand-in"))
    return chosen


def first_line(choices: Sequence[PluginChoice], environ: Mapping[str, str]) -> str:
    """What the sandbox says first: real provider plugins or the local stand-ins."""
    real = [choice for choice in choices if choice.plugin.real is not None]
    if not real:
        names = " and ".join(f"pulumi-resource-{c.plugin.name} {c.plugin.version}" for c in choices)
        return (
            "local stand-in provider plugins (standins/, see standins/FIDELITY.md): no "
            f"{names} in {operator_plugin_cache(environ)} or on PATH"
        )
    described = ", ".join(
        f"{c.plugin.name} {c.plugin.version} "
        + (
            f"real ({c.where}: {c.plugin.real})"
            if c.plugin.real is not None
            else f"local stand-in (standins/{c.plugin.standin})"
        )
        for c in choices
    )
    kind = "real provider plugins" if len(real) == len(choices) else "provider plugins"
    return f"{kind}: {described}"


def mode_from(argv: Sequence[str]) -> str:
    """The `--plugins` value among a sandbox command's arguments (default: auto)."""
    for index, argument in enumerate(argv):
        if argument == "--plugins" and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith("--plugins="):
            return argument.split("=", 1)[1]
    return "auto"


if __name__ == "__main__":
    # `scripts/sandbox` says this first, before it installs anything: standard library only.
    print(f"sandbox: {first_line(choose_plugins(os.environ, mode_from(sys.argv[1:])), os.environ)}")

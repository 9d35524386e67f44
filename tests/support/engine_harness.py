"""The real Pulumi engine, run offline for tests: see sandbox/engine.py (product code,
shared with `scripts/sandbox`), with two things made once per test process and reused by
every workspace after, because only their results are read:

- the plugin cache: the first workspace installs the providers the documented way
  (`pulumi plugin install --file`); later ones get a copy of the cache that made, entry
  for entry (what `plugin install` would write again: the launcher and its `.lock`);
- the ciphertexts of secret config: `configure` sets each secret leaf through
  `pulumi config set --secret` (stdin, as documented) the first time its value is seen,
  and writes the ciphertext the CLI made into later stacks. That needs one salt: a stack
  nothing has run on since `stack init` takes the salt line of the first stack (the
  passphrase provider's key is derived from the passphrase and that salt); a stack that
  already holds secrets under a salt of its own, or another secrets provider, is
  configured through the CLI throughout. `set_config` and `set_secret` always run the CLI.

Each run of `pulumi config set --secret` costs about 0.4 s of CPU, a plugin install 0.2 s;
the suite ran 230 and 118 of them on 63 stacks, all but a few for values already seen.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sandbox import engine
from sandbox.engine import (
    ENGINE_DIR_VAR,
    ENGINE_SCRIPT,
    PASSPHRASE,
    PROJECT,
    REPO_ROOT,
    STANDIN_DIR,
    EngineUnavailableError,
    PulumiResult,
    bundled_toolchain,
    leaves,
    link_project,
    locate_engine,
)
from sandbox.plugins import ProviderPlugin
from sandbox.processes import kill_group, kill_processes_with_env

__all__ = [
    "ENGINE_DIR_VAR",
    "ENGINE_SCRIPT",
    "PASSPHRASE",
    "PROJECT",
    "REPO_ROOT",
    "STANDIN_DIR",
    "EngineUnavailableError",
    "PulumiResult",
    "PulumiWorkspace",
    "bundled_toolchain",
    "kill_group",
    "kill_processes_with_env",
    "link_project",
    "locate_engine",
]

_PASSPHRASE_VAR = "PULUMI_CONFIG_PASSPHRASE"


@dataclass
class _SaltedCiphertexts:
    salt_line: str  # a stack file's `encryptionsalt`
    by_plaintext: dict[str, str] = field(default_factory=dict)


# Per test process: plugin caches by the providers they hold; ciphertexts by passphrase.
_PLUGIN_CACHES: dict[tuple[ProviderPlugin, ...], Path] = {}
_CIPHERTEXTS: dict[str, _SaltedCiphertexts] = {}


def _plugin_cache_copy(plugins: Path) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="openclaw-plugin-cache-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    copy = folder / "plugins"
    shutil.copytree(plugins, copy, symlinks=True)
    return copy


def _secure_leaf(document: Mapping[str, Any], path: str) -> str:
    first, *rest = path.split(".")
    node: Any = document["config"][f"{PROJECT}:{first}"]
    for part in rest:
        node = node[part]
    return str(node["secure"])


def _holds_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return "secure" in value or any(_holds_secure(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_secure(item) for item in value)
    return False


@dataclass
class PulumiWorkspace(engine.PulumiWorkspace):
    # Stacks no engine operation has run on since `stack init` (config commands aside).
    _fresh_stacks: set[str] = field(default_factory=set)

    def _install_plugins(self, plugins: Path) -> None:
        cached = _PLUGIN_CACHES.get(tuple(self.providers))
        if cached is not None:
            shutil.copytree(cached, plugins, symlinks=True)
            return
        super()._install_plugins(plugins)
        _PLUGIN_CACHES[tuple(self.providers)] = _plugin_cache_copy(plugins)

    def start(self, *args: str, **kwargs: Any) -> Any:
        if not args or args[0] != "config":
            self._fresh_stacks.clear()
        return super().start(*args, **kwargs)

    def init_stack(self, stack: str) -> None:
        super().init_stack(stack)
        self._fresh_stacks.add(stack)

    def configure(self, stack: str, config: Mapping[str, Any], secret_keys: Sequence[str]) -> None:
        """Plain keys into the stack file; each secret leaf as the CLI encrypts it."""
        self.write_plain_config(stack, {k: v for k, v in config.items() if k not in secret_keys})
        secret_leaves = [leaf for key in secret_keys for leaf in leaves(key, config[key])]
        known = self._shared_ciphertexts(stack)
        if known is None:
            for path, value in secret_leaves:
                self.set_secret(stack, path, value)
            return
        for path, value in secret_leaves:
            if value not in known.by_plaintext:
                self.set_secret(stack, path, value)
                document = yaml.safe_load(self.stack_file(stack).read_text())
                known.by_plaintext[value] = _secure_leaf(document, path)
        self._write_secure(stack, [(p, known.by_plaintext[v]) for p, v in secret_leaves])

    def _shared_ciphertexts(self, stack: str) -> _SaltedCiphertexts | None:
        """The ciphertexts this stack can take, its salt made the shared one if need be."""
        passphrase = self.passphrase_env.get(_PASSPHRASE_VAR)
        if set(self.passphrase_env) != {_PASSPHRASE_VAR} or passphrase is None:
            return None
        path = self.stack_file(stack)
        document = yaml.safe_load(path.read_text()) if path.exists() else None
        salt_line = (document or {}).get("encryptionsalt")
        if not isinstance(salt_line, str):
            return None  # another secrets provider, or no stack file yet
        known = _CIPHERTEXTS.setdefault(passphrase, _SaltedCiphertexts(salt_line))
        if salt_line == known.salt_line:
            return known
        if stack not in self._fresh_stacks or _holds_secure(document.get("config", {})):
            return None
        document["encryptionsalt"] = known.salt_line
        path.write_text(yaml.safe_dump(document, sort_keys=True))
        return known

    def _write_secure(self, stack: str, ciphertexts: Sequence[tuple[str, str]]) -> None:
        path = self.stack_file(stack)
        document = yaml.safe_load(path.read_text())
        values = document.setdefault("config", {})
        for dotted, ciphertext in ciphertexts:
            first, *rest = dotted.split(".")
            key = f"{PROJECT}:{first}"
            if not rest:
                values[key] = {"secure": ciphertext}
                continue
            node = values.setdefault(key, {})
            for part in rest[:-1]:
                node = node.setdefault(part, {})
            node[rest[-1]] = {"secure": ciphertext}
        path.write_text(yaml.safe_dump(document, sort_keys=True))

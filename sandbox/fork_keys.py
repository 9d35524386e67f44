"""Keys of the bootstrap config that only the CVM image's OpenClaw fork accepts.

The oracle is the upstream npm release `openclaw@2026.2.12`; the image runs the fork
`h4x3rotab/openclaw`, branch `phala-2026.2.12`, which adds the mux transport. Upstream
rejects these keys as unrecognized; anything else it rejects is a defect of ours.

Each entry: the config path OpenClaw reports (the object holding the key, dotted), the
key, and where the fork's schema defines it with the shape of its value. Values are
checked against that shape by `check_fork_value`, so an allowed key cannot smuggle in a
value the fork would reject.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ForkOnlyKey:
    parent: tuple[str, ...]  # path of the object that holds the key
    key: str
    schema: str  # where the fork defines it
    shape: str  # the value's shape in the fork's zod schema
    fields: dict[str, Callable[[Any], bool]]  # the strict object's fields and their checks

    @property
    def reported_path(self) -> str:
        """How OpenClaw names the place of an unrecognized key: its parent object."""
        return ".".join(self.parent) if self.parent else "<root>"


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


def _str(value: Any) -> bool:
    return isinstance(value, str)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


_CHANNEL_MUX_SHAPE = "z.object({enabled?: boolean, timeoutMs?: int > 0}).strict().optional()"
_CHANNEL_MUX_FIELDS: dict[str, Callable[[Any], bool]] = {
    "enabled": _bool,
    "timeoutMs": _positive_int,
}

FORK_ONLY_KEYS: tuple[ForkOnlyKey, ...] = (
    ForkOnlyKey(
        parent=("gateway", "http", "endpoints"),
        key="mux",
        schema="src/config/zod-schema.ts: OpenClawSchema.gateway.http.endpoints.mux",
        shape=(
            "z.object({enabled?: boolean, baseUrl?: string, registerKey?: string, "
            "inboundUrl?: string, maxBodyBytes?: int > 0}).strict().optional()"
        ),
        fields={
            "enabled": _bool,
            "baseUrl": _str,
            "registerKey": _str,
            "inboundUrl": _str,
            "maxBodyBytes": _positive_int,
        },
    ),
    ForkOnlyKey(
        parent=("channels", "telegram", "accounts", "mux"),
        key="mux",
        schema="src/config/zod-schema.providers-core.ts: TelegramAccountSchemaBase.mux "
        "= ChannelMuxSchema (src/config/zod-schema.core.ts; type ChannelMuxConfig in "
        "src/config/types.mux.ts)",
        shape=_CHANNEL_MUX_SHAPE,
        fields=_CHANNEL_MUX_FIELDS,
    ),
    ForkOnlyKey(
        parent=("channels", "discord", "accounts", "mux"),
        key="mux",
        schema="src/config/zod-schema.providers-core.ts: DiscordAccountSchema.mux "
        "= ChannelMuxSchema (src/config/zod-schema.core.ts)",
        shape=_CHANNEL_MUX_SHAPE,
        fields=_CHANNEL_MUX_FIELDS,
    ),
    ForkOnlyKey(
        parent=("channels", "whatsapp", "accounts", "mux"),
        key="mux",
        schema="src/config/zod-schema.providers-whatsapp.ts: WhatsAppAccountSchema.mux "
        "= ChannelMuxSchema (src/config/zod-schema.core.ts)",
        shape=_CHANNEL_MUX_SHAPE,
        fields=_CHANNEL_MUX_FIELDS,
    ),
)


def _lookup(config: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = config
    for part in path:
        node = node[part]
    return node


def fork_value_problems(config: dict[str, Any]) -> list[str]:
    """Where the config's fork-only values do not fit the fork's schema."""
    problems = []
    for entry in FORK_ONLY_KEYS:
        holder = _lookup(config, entry.parent)
        if entry.key not in holder:
            continue
        value = holder[entry.key]
        where = f"{entry.reported_path}.{entry.key}"
        if not isinstance(value, dict):
            problems.append(f"{where}: not an object ({entry.shape})")
            continue
        for name, field_value in value.items():
            check = entry.fields.get(name)
            if check is None:
                problems.append(f"{where}.{name}: not in the fork's strict object")
            elif not check(field_value):
                problems.append(f"{where}.{name}: {field_value!r} does not fit {entry.shape}")
    return problems


def without_fork_only_keys(config: dict[str, Any]) -> dict[str, Any]:
    """A deep copy with every fork-only key removed: what upstream must accept as is."""
    import copy

    stripped = copy.deepcopy(config)
    for entry in FORK_ONLY_KEYS:
        _lookup(stripped, entry.parent).pop(entry.key, None)
    return stripped

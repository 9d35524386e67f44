"""A stack file's config, turned into what the Pulumi engine hands the program.

The offline plan must see the config the program sees under `pulumi preview`. This
follows Pulumi v3.274.0 (sdk/go/common/workspace/loaders.go, resource/config/object.go
and value.go, pkg/workspace/config.go) after yaml.v3 has decoded the file
(plan/go_yaml.py):
- the document must be a mapping with string keys ("expected project to be an object");
  `config:` must be a mapping; a key without a namespace gets the project's;
  `<ns>:config:<name>` is the old spelling of `<ns>:<name>`;
- a top-level value becomes text: booleans `true`/`false`, numbers as encoding/json
  writes them (`40.0` is `40`), null is empty, a timestamp is Go's time.Time.String();
- a mapping or list becomes JSON; inside it a key that is not a string is named by its
  text (`5` -> "5"); `{secure: <text>}` is an encrypted leaf, and a value holding one is
  secret as a whole;
- keys Pulumi.yaml declares get their default when unset, and a set value must fit the
  declared type, checked key by key in sorted order ("must be of type 'integer'").

Where Pulumi's own behaviour is not deterministic (a key given both bare and with the
namespace: Go's map order picks the winner), the plan refuses the file instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plan.go_values import (
    GoTime,
    GoUint,
    NonStringKeyMap,
    go_json_float,
    go_percent_s,
    go_percent_v,
    go_type_name,
)
from plan.go_yaml import GoYamlError, unmarshal

KEY_FORM = "(configuration keys should be of the form `<namespace>:<name>`)"
# The fields of Pulumi's ProjectStack (sdk/go/common/workspace/project.go).
STACK_FILE_FIELDS = frozenset(
    {"secretsprovider", "encryptedkey", "encryptionsalt", "config", "environment"}
)


class StackFileError(Exception):
    """The stack file cannot be read as Pulumi reads it; one line, naming the key."""


@dataclass(frozen=True)
class Encrypted:
    """A `{secure: ...}` leaf: ciphertext only the stack's secrets provider can open."""

    ciphertext: str


@dataclass(frozen=True)
class EngineConfig:
    """Full key (`ns:name`) -> what the program receives: text for a scalar, or for an
    object the JSON-equivalent value with Encrypted leaves; and the secret keys."""

    values: Mapping[str, Any]
    secret_keys: frozenset[str]
    # Top-level keys other than Pulumi's own: Pulumi reads the file without complaint
    # and drops them, so the program never sees them.
    ignored_top_level: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeclaredKey:
    """A key Pulumi.yaml declares: its type and its default (None: no default)."""

    type: str
    items: str | None
    default: Any


# --------------------------------------------------------------------------- values


def _object_value(value: Any) -> Any:
    """A value inside a config object, as the program's json.loads sees it."""
    if isinstance(value, dict):
        if set(value) == {"secure"} and isinstance(value["secure"], str):
            return Encrypted(value["secure"])
        return {key: _object_value(item) for key, item in value.items()}
    if isinstance(value, NonStringKeyMap):
        as_text = {
            key if isinstance(key, str) else go_percent_v(key): item for key, item in value.items
        }
        return _object_value(as_text)
    if isinstance(value, list):
        return [_object_value(item) for item in value]
    if isinstance(value, GoUint):  # past int64, Pulumi re-reads it as a float64
        return json.loads(go_json_float(float(value.value)))
    if isinstance(value, float):
        return json.loads(go_json_float(value))
    if isinstance(value, GoTime):
        return value.go_string()
    return value  # str, bool, int, None


def _has_encrypted(value: Any) -> bool:
    if isinstance(value, Encrypted):
        return True
    if isinstance(value, dict):
        return any(_has_encrypted(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_encrypted(item) for item in value)
    return False


def _engine_value(value: Any) -> Any:
    """A top-level config value: text, Encrypted, or an object (dict/list)."""
    if isinstance(value, GoUint):  # kept as its digits at the top level
        return str(value.value)
    converted = _object_value(value)
    if isinstance(converted, (dict, list, Encrypted)):
        return converted
    if converted is None:
        return ""
    if isinstance(converted, bool):
        return "true" if converted else "false"
    if isinstance(value, float):
        return go_json_float(value)
    return str(converted)


# --------------------------------------------------------------------------- keys


def _parse_key(key: str) -> str:
    """config.ParseKey: `<ns>:<name>`, or the old `<ns>:config:<name>`."""
    parts = key.split(":")
    if len(parts) == 2:
        return key
    if len(parts) == 3 and parts[1] == "config" and parts[0] and parts[2]:
        return f"{parts[0]}:{parts[2]}"
    raise StackFileError(f"could not parse {key} as a configuration key {KEY_FORM}")


def _config_mapping(config: Any, project: str) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, NonStringKeyMap):
        (key, _), *_ = [(k, v) for k, v in config.items if not isinstance(k, str)]
        raise StackFileError(
            f"config: key {go_percent_v(key)!r} is not a string: could not parse it as a "
            f"configuration key {KEY_FORM}"
        )
    if not isinstance(config, dict):
        kind = "a list (!!seq)" if isinstance(config, list) else f"a {go_type_name(config)}"
        raise StackFileError(
            f"config: must be a mapping of configuration keys to values, not {kind}"
        )
    by_key: dict[str, Any] = {}
    written_as: dict[str, str] = {}
    for written, value in config.items():
        namespaced = written if ":" in written else f"{project}:{written}"
        key = _parse_key(namespaced)
        if key in by_key:
            raise StackFileError(
                f"config: {written!r} and {written_as[key]!r} both set {key}; "
                "Pulumi would keep one of them at random: remove one"
            )
        by_key[key] = value
        written_as[key] = written
    return by_key


# --------------------------------------------------------------------------- project types


def declared_keys(project_file: Path) -> dict[str, DeclaredKey]:
    """The `config:` types and defaults Pulumi.yaml declares (bare key -> declaration)."""
    document = unmarshal(project_file.read_text(encoding="utf-8"))
    declared: dict[str, DeclaredKey] = {}
    for key, spec in ((document or {}).get("config") or {}).items():
        if isinstance(spec, dict) and "type" in spec:
            items = spec.get("items")
            declared[key] = DeclaredKey(
                type=spec["type"],
                items=items.get("type") if isinstance(items, dict) else None,
                default=spec.get("default"),
            )
    return declared


def _type_name(declared: DeclaredKey) -> str:
    return f"array<{declared.items}>" if declared.type == "array" else declared.type


def _fits(declared: DeclaredKey, value: Any) -> bool:
    """workspace.ValidateConfigValue, on what the engine decrypted (JSON for objects)."""
    if isinstance(value, Encrypted):
        return declared.type == "string"  # an encrypted scalar decrypts to text
    if declared.type == "string":
        return isinstance(value, str)
    if declared.type == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value).is_integer()
        # strconv.Atoi: an optional sign, decimal digits, within int64
        return (
            isinstance(value, str)
            and re.fullmatch(r"[+-]?[0-9]+", value) is not None
            and -(2**63) <= int(value) < 2**63
        )
    if declared.type == "boolean":
        return value in ("true", "false") or isinstance(value, bool)
    if declared.type == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or declared.items is None:
        return False
    return all(_fits(DeclaredKey(declared.items, None, None), item) for item in value)


def _default_text(default: Any) -> Any:
    if isinstance(default, (dict, list)):
        return _object_value(default)
    return _engine_value(default)


# --------------------------------------------------------------------------- reading


def engine_config(
    text: str,
    project: str,
    stack: str,
    declared: Mapping[str, DeclaredKey],
    *,
    with_defaults: bool = False,
) -> EngineConfig:
    """The config map the program receives for a stack file's text (StackFileError if
    Pulumi would refuse the file). Pulumi.yaml's defaults for unset keys are added only
    with `with_defaults`: the program applies the same defaults itself."""
    try:
        document = unmarshal(text)
    except GoYamlError as error:
        raise StackFileError(str(error)) from None
    if document is None:
        document = {}
    if isinstance(document, NonStringKeyMap):
        (key, _), *_ = [(k, v) for k, v in document.items if not isinstance(k, str)]
        raise StackFileError(f"expected only string keys, got '{go_percent_s(key)}'")
    if not isinstance(document, dict):
        raise StackFileError(
            f"expected project to be an object, was '{go_type_name(document)}' "
            "(a stack file is a mapping with a config: section)"
        )
    config = _config_mapping(document.get("config"), project)

    values: dict[str, Any] = {}
    for key, value in config.items():
        try:
            values[key] = _engine_value(value)
        except ValueError as error:  # NaN or an infinity: encoding/json refuses it
            raise StackFileError(f"config: {key}: {error}") from None
    for name in sorted(declared):
        key = f"{project}:{name}"
        if key not in values:
            if with_defaults and declared[name].default is not None:
                values[key] = _default_text(declared[name].default)
            continue
        if not _fits(declared[name], values[key]):
            raise StackFileError(
                f"Stack '{stack}' with configuration key '{name}' must be of type "
                f"'{_type_name(declared[name])}'"
            )
    secret_keys = frozenset(key for key, value in values.items() if _has_encrypted(value))
    ignored = tuple(sorted(key for key in document if key not in STACK_FILE_FIELDS))
    return EngineConfig(values=values, secret_keys=secret_keys, ignored_top_level=ignored)


def read_stack_file(path: Path, project: str, project_file: Path) -> EngineConfig:
    """`engine_config` of a stack file, its errors prefixed with the file's name."""
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise StackFileError(f"{path.name}: not UTF-8 text ({error.reason})") from None
    try:
        return engine_config(text, project, stack, declared_keys(project_file))
    except StackFileError as error:
        raise StackFileError(f"{path.name}: {error}") from None

"""YAML read the way Pulumi's Go CLI reads a stack file: gopkg.in/yaml.v3 into `any`.

Pulumi (v3.274.0) decodes `Pulumi.<stack>.yaml` with yaml.v3, whose rules are neither
YAML 1.1 (PyYAML's) nor plain YAML 1.2 core. What this module copies, from yaml.v3's
resolve.go and decode.go:
- plain scalars: `true/True/TRUE`, `false/...` are booleans and `~`, `null`, empty are
  null, but `yes`, `on`, `y`, `off` stay strings; integers go through Go's base-0
  ParseInt after dropping `_`, so `040` is octal 32, `0x40` is 64, `0b11` is 3 and
  `1_000` is 1000; `10:00` is a string (no base 60); timestamps (`2024-01-01`, with a
  time and zone) are times; `.inf`/`.nan` are floats;
- quoted and block scalars, and `!!str`, are strings; an explicit `!!int`, `!!float`,
  `!!bool`, `!!null` or `!!timestamp` must fit its value; any other tag (`!foo`,
  `!!python/...`) leaves the scalar a string, `!!binary` is base64-decoded;
- duplicate keys in a mapping fail, compared by the key's text as written;
- `<<` merge keys; an anchor may be redefined; an alias to its own anchor fails;
- the excessive-aliasing guard, so an alias bomb fails as early as it does in Go.

Only the first document is read, as yaml.v3's Unmarshal does. Syntax is parsed by
PyYAML's parser (a port of libyaml, as yaml.v3's is), so syntax errors are found at the
same place, though worded in PyYAML's terms.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml
from yaml import events

from plan.go_values import GoTime, GoUint, NonStringKeyMap, go_percent_v

# yaml.v3 refuses nesting past 10,000 levels. The plan stops at a fixed, much lower depth
# so that no reader after it (the stack file's values, placeholders, the program's JSON)
# can meet Python's recursion limit at a few hundred levels: every depth gets the same
# one-line answer naming where it is. No config nests more than a few levels.
MAX_DEPTH = 100
TOO_DEEP = (
    f"nests collections more than {MAX_DEPTH} levels deep; the plan reads at most {MAX_DEPTH}"
)


class GoYamlError(Exception):
    """The document cannot be read; the message is one line, with a line number, and
    names the key path of the value it is about when there is one."""

    def __init__(
        self, message: str, path: tuple[str, ...] = (), *, about_a_value: bool = True
    ) -> None:
        self.message = message
        self.path = path
        self.about_a_value = about_a_value  # False: about the whole document
        where = "".join(p if p.startswith("[") else f".{p}" for p in path).lstrip(".")
        super().__init__(f"{where}: {message}" if path else message)

    def inside(self, key: str) -> GoYamlError:
        """The same error, its path starting one level up (a key, or "[index]")."""
        if not self.about_a_value:
            return self
        return GoYamlError(self.message, (key, *self.path))


# --------------------------------------------------------------------------- nodes


@dataclass(eq=False)
class Node:
    kind: str  # "scalar" | "sequence" | "mapping" | "alias"
    line: int  # 1-based, like yaml.v3's
    tag: str | None = None  # as written (PyYAML expands `!!int` to the long form)
    value: str = ""  # scalar text, or the anchor name of an alias
    style: str | None = None  # None: plain; "'", '"', "|", ">"
    content: list[Node] = field(default_factory=list)
    target: Node | None = None  # what an alias refers to


def _go_error_line(error: yaml.MarkedYAMLError) -> str:
    """The line yaml.v3 names for a syntax error, by its own rule: the context's line if
    there is one, else the problem's, 0-based, plus one for scanner errors only. (So
    for a parser error it names the line before the construct that is left open.)"""
    scanner = isinstance(error, yaml.scanner.ScannerError)
    for mark in (error.context_mark, error.problem_mark):
        if mark is not None and mark.line != 0:
            return f"line {mark.line + 1 if scanner else mark.line}: "
    return ""


def _compose(text: str) -> Node | None:
    """The first document's node tree, anchors resolved as yaml.v3's parser does."""
    loader = yaml.SafeLoader(text)
    anchors: dict[str, Node] = {}
    depth = 0

    def node(path: tuple[str, ...]) -> Node:
        nonlocal depth
        event = loader.get_event()
        line = event.start_mark.line + 1
        if isinstance(event, events.AliasEvent):
            target = anchors.get(event.anchor or "")
            if target is None:
                raise GoYamlError(f"line {line}: unknown anchor '{event.anchor}' referenced")
            return Node("alias", line, value=event.anchor or "", target=target)
        if isinstance(event, events.ScalarEvent):
            created = Node("scalar", line, event.tag, event.value or "", event.style or None)
            if event.anchor is not None:
                anchors[event.anchor] = created
            return created
        kind = "sequence" if isinstance(event, events.SequenceStartEvent) else "mapping"
        created = Node(kind, line, event.tag)
        if event.anchor is not None:  # before the children: yaml.v3 registers it first too
            anchors[event.anchor] = created
        end = events.SequenceEndEvent if kind == "sequence" else events.MappingEndEvent
        depth += 1
        if depth > MAX_DEPTH:
            shown = path if len(path) <= 4 else (*path[:4], "[...]")
            raise GoYamlError(f"line {line}: {TOO_DEEP}", shown)
        while not loader.check_event(end):
            if kind == "sequence":
                created.content.append(node((*path, f"[{len(created.content)}]")))
                continue
            key = node(path)
            created.content.append(key)
            if loader.check_event(end):
                break
            created.content.append(node((*path, key.value if key.kind == "scalar" else "?")))
        loader.get_event()
        depth -= 1
        return created

    try:
        loader.get_event()  # stream start
        if loader.check_event(events.StreamEndEvent):
            return None
        loader.get_event()  # document start
        root = node(())
        loader.get_event()  # document end
        return root
    except yaml.MarkedYAMLError as error:
        problem = error.problem or error.context or "invalid YAML"
        raise GoYamlError(f"invalid YAML: {_go_error_line(error)}{problem}") from None
    except yaml.YAMLError as error:
        raise GoYamlError(" ".join(str(error).split())) from None
    except RecursionError:  # cannot happen below MAX_DEPTH; kept as a bound, not a catch-all
        raise GoYamlError(TOO_DEEP, about_a_value=False) from None
    finally:
        loader.dispose()


# --------------------------------------------------------------------------- scalars

_LONG_TAG_PREFIX = "tag:yaml.org,2002:"
_RESOLVABLE = {"", "!!str", "!!bool", "!!int", "!!float", "!!null", "!!timestamp"}
_PLAIN_TABLE = {
    **dict.fromkeys("+-", "S"),
    **dict.fromkeys("0123456789", "D"),
    **dict.fromkeys("yYnNtTfFoO~", "M"),
    ".": ".",
}
_RESOLVE_MAP: dict[str, tuple[str, Any]] = {
    **dict.fromkeys(("true", "True", "TRUE"), ("!!bool", True)),
    **dict.fromkeys(("false", "False", "FALSE"), ("!!bool", False)),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), ("!!null", None)),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), ("!!float", math.nan)),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), ("!!float", math.inf)),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), ("!!float", -math.inf)),
    "<<": ("!!merge", "<<"),
}
_YAML_STYLE_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_GO_DECIMAL_FLOAT = re.compile(r"^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$")
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


def _go_parse_int(text: str) -> int | None:
    """strconv.ParseInt/ParseUint with base 0 (sign, 0x/0o/0b/0 prefixes), no range check."""
    match = re.fullmatch(
        r"([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)", text
    )
    if match is None:
        return None
    sign, digits = match.groups()
    lowered = digits.lower()
    if lowered.startswith(("0x", "0o", "0b")):
        number = int(lowered[2:], {"x": 16, "o": 8, "b": 2}[lowered[1]])
    elif len(digits) > 1 and digits[0] == "0":  # a leading 0: octal, as Go base 0 reads it
        number = int(digits, 8)
    else:
        number = int(digits)
    return -number if sign == "-" else number


def _go_parse_float(text: str) -> float | None:
    """strconv.ParseFloat for the decimal forms yaml.v3 hands it; None on error."""
    if not _GO_DECIMAL_FLOAT.fullmatch(text):
        return None
    number = float(text)
    return None if math.isinf(number) else number  # Go reports a range error


_TIMESTAMP = re.compile(
    r"(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<H>[0-9]{1,2}):(?P<M>[0-9]{1,2}):(?P<S>[0-9]{1,2})"
    r"(?:[.,](?P<frac>[0-9]+))?(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?)?"
)


def _parse_timestamp(text: str) -> GoTime | None:
    """yaml.v3's parseTimestamp: its four layouts, through Go's time.Parse rules."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    parts = match.groupdict()
    if parts["sep"] in ("T", "t") and parts["zone"] is None:
        return None  # the T layouts need a zone
    if parts["sep"] == " " and parts["zone"] is not None:
        return None  # the space layout has none
    try:
        moment = datetime(
            int(parts["y"]),
            int(parts["m"]),
            int(parts["d"]),
            int(parts["H"] or 0),
            int(parts["M"] or 0),
            int(parts["S"] or 0),
        )
    except ValueError:
        return None
    nanos = int((parts["frac"] or "0")[:9].ljust(9, "0"))
    zone_text = parts["zone"]
    if zone_text in (None, "Z"):
        return GoTime(moment, nanos, None)
    sign = -1 if zone_text[0] == "-" else 1
    hours, minutes = int(zone_text[1:3]), int(zone_text[4:6])
    if hours > 24 or minutes > 59:  # Go accepts hours up to 24 in an offset
        return None
    return GoTime(moment, nanos, sign * (hours * 3600 + minutes * 60))


def _short_tag(tag: str | None) -> str:
    if not tag:
        return ""
    if tag.startswith(_LONG_TAG_PREFIX):
        return "!!" + tag[len(_LONG_TAG_PREFIX) :]
    return tag


def _implicit(tag: str, text: str) -> tuple[str, Any]:
    """yaml.v3's resolve() for a resolvable tag: the tag the text resolves to, and the value."""
    hint = _PLAIN_TABLE.get(text[0]) if text else "N"
    if hint is None or tag == "!!str":
        return "!!str", text
    if text in _RESOLVE_MAP:
        return _RESOLVE_MAP[text]
    if hint == ".":
        number = _go_parse_float(text)
        if number is not None:
            return "!!float", number
    elif hint in ("D", "S"):
        if tag in ("", "!!timestamp"):
            moment = _parse_timestamp(text)
            if moment is not None:
                return "!!timestamp", moment
        plain = text.replace("_", "")
        number = _go_parse_int(plain)
        if number is not None and _INT64_MIN <= number <= _INT64_MAX:
            return "!!int", number
        if number is not None and 0 <= number <= _UINT64_MAX and not plain.startswith(("+", "-")):
            return "!!int", GoUint(number)
        if _YAML_STYLE_FLOAT.fullmatch(plain):
            floating = _go_parse_float(plain)
            if floating is not None:
                return "!!float", floating
    return "!!str", text


def _scalar(node: Node) -> Any:
    short = _short_tag(node.tag)
    if short == "!!str" or (node.tag in (None, "!") and node.style is not None):
        return node.value
    if short not in _RESOLVABLE:
        if short == "!!binary":
            try:
                return base64.b64decode(node.value.replace("\n", ""), validate=True).decode(
                    "utf-8", "replace"
                )
            except binascii.Error:
                raise GoYamlError(
                    f"line {node.line}: !!binary value contains invalid base64 data"
                ) from None
        return node.value  # an unknown tag leaves the text as it is
    resolved_tag, value = _implicit(short, node.value)
    if short in ("", resolved_tag):
        return value
    if short == "!!float" and resolved_tag == "!!int":
        return float(value.value if isinstance(value, GoUint) else value)
    # yaml.v3 quotes the text; the plan does not, as it may be a secret written in plaintext
    raise GoYamlError(f"line {node.line}: cannot decode {resolved_tag} as a {short}")


# --------------------------------------------------------------------------- decoding


def _is_merge(node: Node) -> bool:
    return (
        node.kind == "scalar"
        and node.value == "<<"
        and (node.tag in (None, "!") or _short_tag(node.tag) == "!!merge")
    )


def _key_short_tag(node: Node) -> str:
    """yaml.v3's Node.ShortTag() of a mapping key."""
    if node.kind == "alias":
        return _key_short_tag(node.target) if node.target else ""
    if node.kind == "scalar":
        if _short_tag(node.tag) == "!!str" or (node.tag in (None, "!") and node.style):
            return "!!str"
        if node.tag in (None, "!"):
            return _implicit("", node.value)[0]
        return _short_tag(node.tag)
    if node.tag in (None, "!"):
        return "!!map" if node.kind == "mapping" else "!!seq"
    return _short_tag(node.tag)


class _Decoder:
    """yaml.v3's decoder, unmarshalling into `any`."""

    def __init__(self) -> None:
        self.decode_count = 0
        self.alias_count = 0
        self.alias_depth = 0
        self.in_progress: set[int] = set()
        self.errors: list[str] = []

    def _count(self) -> None:
        self.decode_count += 1
        if self.alias_depth > 0:
            self.alias_count += 1
        if (
            self.alias_count > 100
            and self.decode_count > 1000
            and self.alias_count / self.decode_count > _allowed_alias_ratio(self.decode_count)
        ):
            raise GoYamlError("document contains excessive aliasing", about_a_value=False)

    def decode(self, node: Node) -> Any:
        self._count()
        if node.kind == "alias":
            if id(node) in self.in_progress:
                raise GoYamlError(f"anchor '{node.value}' value contains itself")
            self.in_progress.add(id(node))
            self.alias_depth += 1
            try:
                assert node.target is not None
                return self.decode(node.target)
            finally:
                self.alias_depth -= 1
                self.in_progress.discard(id(node))
        if node.kind == "scalar":
            return _scalar(node)
        if node.kind == "sequence":
            items = []
            for index, child in enumerate(node.content):
                try:
                    items.append(self.decode(child))
                except GoYamlError as error:
                    raise error.inside(f"[{index}]") from None
            return items
        return self.mapping(node)

    def mapping(self, node: Node, into: dict[Any, Any] | None = None) -> Any:
        pairs = list(zip(node.content[::2], node.content[1::2], strict=True))
        seen: dict[tuple[str, str], int] = {}
        duplicated = False
        for key, _ in pairs:
            identity = (key.kind, key.value)
            if identity in seen:
                self.errors.append(
                    f"line {key.line}: mapping key {json.dumps(key.value, ensure_ascii=False)} "
                    f"already defined at line {seen[identity]}"
                )
                duplicated = True
            else:
                seen[identity] = key.line
        if duplicated:
            return None
        string_keys = all(_key_short_tag(key) in ("!!str", "!!merge") for key, _ in pairs)
        result: dict[Any, Any] = {} if into is None else into
        merge: Node | None = None
        for key_node, value_node in pairs:
            if _is_merge(key_node):
                merge = value_node
                continue
            key = self.decode(key_node)
            if isinstance(key, (list, dict, NonStringKeyMap)):
                raise GoYamlError(f"line {key_node.line}: invalid map key: {key!r}")
            if into is not None and key in result:
                continue  # a key the merging mapping set itself wins
            hashable = (
                key if not isinstance(key, float) or not math.isnan(key) else ("nan", id(key_node))
            )
            try:
                result[hashable] = self.decode(value_node)
            except GoYamlError as error:
                raise error.inside(key if isinstance(key, str) else go_percent_v(key)) from None
        if merge is not None:
            self._merge(merge, result)
        if string_keys or into is not None:
            return result
        return NonStringKeyMap(list(result.items()), node.line)

    def _merge(self, merge: Node, into: dict[Any, Any]) -> None:
        wanted = "map merge requires map or sequence of maps as the value"
        sources = merge.content if merge.kind == "sequence" else [merge]
        for source in sources:
            target = source.target if source.kind == "alias" else source
            if target is None or target.kind != "mapping":
                raise GoYamlError(f"line {merge.line}: {wanted}")
            merged = self.decode(source)
            for key, value in (
                merged.items if isinstance(merged, NonStringKeyMap) else (merged or {}).items()
            ):
                into.setdefault(key, value)


def _allowed_alias_ratio(decode_count: int) -> float:
    low, high = 400_000, 4_000_000
    if decode_count <= low:
        return 0.99
    if decode_count >= high:
        return 0.10
    return 0.99 - 0.89 * (decode_count - low) / (high - low)


def unmarshal(text: str) -> Any:
    """The document as yaml.v3 unmarshals it into `any` (None for an empty one).

    Strings, bool, int (GoUint past int64), float, None, GoTime, list, dict with string
    keys, or NonStringKeyMap."""
    if text.startswith("\ufeff"):
        text = text[1:]  # Pulumi strips a UTF-8 byte order mark first
    root = _compose(text)
    if root is None:
        return None
    decoder = _Decoder()
    try:
        value = decoder.decode(root)
    except RecursionError:
        raise GoYamlError(TOO_DEEP, about_a_value=False) from None
    if decoder.errors:
        raise GoYamlError("; ".join(decoder.errors))
    return value

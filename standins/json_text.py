"""JSON as text: the raw bytes of a member, and Go's compact form.

terraform-provider-cloudflare keeps an account token policy's `resources` as the exact
bytes the API answered with (internal/services/account_token/custom.go:47-78 at v5.19.1,
which stores string(policy["resources"]) of a json.RawMessage), and sends the program's
text as a json.RawMessage, which Go's json.Marshal writes compacted with HTML characters
escaped (encoding/json, marshalerEncoder -> appendCompact(..., escapeHTML=true)).
Python's json module parses values but does not say where they were, so both the
stand-in and the Cloudflare emulator use these helpers to keep and pass on raw text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from json.decoder import scanstring  # type: ignore[attr-defined]  # not in typeshed

_WHITESPACE = " \t\n\r"
_DECODER = json.JSONDecoder()
# What appendCompact escapes when escapeHTML is set (encoding/json/indent.go).
_HTML_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


class RawJsonError(ValueError):
    pass


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _WHITESPACE:
        index += 1
    return index


def _value_end(text: str, index: int) -> int:
    try:
        _, end = _DECODER.raw_decode(text, index)
    except json.JSONDecodeError as error:
        raise RawJsonError(str(error)) from None
    return int(end)


def _members(text: str, index: int) -> Iterator[tuple[str, int, int]]:
    """(key, start, end) of each member of the object starting at text[index]."""
    if text[index : index + 1] != "{":
        raise RawJsonError(f"expected an object at {index}")
    index = _skip(text, index + 1)
    if text[index : index + 1] == "}":
        return
    while True:
        if text[index : index + 1] != '"':
            raise RawJsonError(f"expected a key at {index}")
        key, index = scanstring(text, index + 1)
        index = _skip(text, index)
        if text[index : index + 1] != ":":
            raise RawJsonError(f"expected ':' at {index}")
        start = _skip(text, index + 1)
        end = _value_end(text, start)
        yield key, start, end
        index = _skip(text, end)
        if text[index : index + 1] == ",":
            index = _skip(text, index + 1)
            continue
        if text[index : index + 1] == "}":
            return
        raise RawJsonError(f"expected ',' or '}}' at {index}")


def _elements(text: str, index: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each element of the array starting at text[index]."""
    if text[index : index + 1] != "[":
        raise RawJsonError(f"expected an array at {index}")
    index = _skip(text, index + 1)
    if text[index : index + 1] == "]":
        return
    while True:
        end = _value_end(text, index)
        yield index, end
        index = _skip(text, end)
        if text[index : index + 1] == ",":
            index = _skip(text, index + 1)
            continue
        if text[index : index + 1] == "]":
            return
        raise RawJsonError(f"expected ',' or ']' at {index}")


def raw_member(text: str, start: int, key: str) -> tuple[int, int] | None:
    """The span of the last member `key` of the object at text[start] (Go's decoder
    also keeps the last of duplicate keys), or None."""
    found = None
    for name, value_start, value_end in _members(text, start):
        if name == key:
            found = (value_start, value_end)
    return found


def raw_policy_resources(text: str, *, in_result: bool) -> list[str]:
    """The raw text of each policy's `resources`, from a token request body
    (`{"policies": [...]}`) or an API reply (`{"result": {"policies": [...]}}`)."""
    start = _skip(text, 0)
    if in_result:
        result = raw_member(text, start, "result")
        if result is None:
            raise RawJsonError("no result")
        start = result[0]
    policies = raw_member(text, start, "policies")
    if policies is None:
        raise RawJsonError("no policies")
    found = []
    for policy_start, _ in _elements(text, policies[0]):
        span = raw_member(text, policy_start, "resources")
        if span is None:
            raise RawJsonError("a policy has no resources")
        found.append(text[span[0] : span[1]])
    return found


def go_compact(text: str) -> str:
    """Go's json.Marshal of a json.RawMessage: whitespace outside strings removed, HTML
    characters and U+2028/U+2029 escaped; anything else byte for byte. Invalid JSON
    raises, as Marshal does."""
    end = _value_end(text, _skip(text, 0))
    if _skip(text, end) != len(text):
        raise RawJsonError(f"invalid character after top-level value at {end}")
    out: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            out.append(_HTML_ESCAPES.get(char, char))
        elif char in _WHITESPACE:
            continue
        else:
            if char == '"':
                in_string = True
            out.append(char)
    return "".join(out)


def with_raw_values(document: object, raw: dict[str, str]) -> str:
    """Compact JSON of `document` in which each string equal to a key of `raw` is
    replaced by that key's raw JSON text (for sending or answering raw members)."""
    text = json.dumps(document, separators=(",", ":"))
    for placeholder, value in raw.items():
        text = text.replace(json.dumps(placeholder), value)
    return text

"""The values yaml.v3 decodes into `any`, and how Go prints them.

Pulumi's messages and config text are made by Go's fmt, strconv and encoding/json; the
offline plan has to print the same: a float as `1e+06`, a non-string map key as
`%!s(int=5)`, a timestamp as time.Time.String().
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class GoUint:
    """An integer that fits only Go's uint64 (yaml.v3 keeps such numbers apart)."""

    value: int


@dataclass(frozen=True)
class GoTime:
    """A yaml.v3 timestamp; `zone` is None for UTC, else a fixed offset in seconds."""

    moment: datetime  # naive, whole seconds, in the zone's local time
    nanos: int
    zone: int | None

    def go_string(self) -> str:
        """Go's time.Time.String(), as Pulumi turns a timestamp into config text.

        Assumes the engine's local zone is UTC (a non-zero fixed offset prints as
        e.g. `-0500 -0500`; the README's Known limits say so)."""
        base = f"{self.moment.year:04d}" + self.moment.strftime("-%m-%d %H:%M:%S")
        if self.nanos:
            base += f".{self.nanos:09d}".rstrip("0")
        if self.zone is None or self.zone == 0:
            return f"{base} +0000 UTC"
        sign = "-" if self.zone < 0 else "+"
        minutes = abs(self.zone) // 60
        offset = f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
        return f"{base} {offset} {offset}"


@dataclass
class NonStringKeyMap:
    """A mapping with a key that is not a string (Go: map[interface{}]interface{})."""

    items: list[tuple[Any, Any]]
    line: int


# --------------------------------------------------------------------------- Go formatting


def go_type_name(value: Any) -> str:
    """Go's %T of a decoded value, as Pulumi's messages print it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, GoUint):
        return "uint64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, GoTime):
        return "time.Time"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, NonStringKeyMap):
        return "map[interface {}]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "<nil>"


def _shortest_digits(number: float) -> tuple[str, int]:
    """(digits, exponent of the first digit) of the shortest decimal that reads back as
    `number`: what Go's strconv and Python's repr both produce."""
    _, digits, exponent = Decimal(repr(abs(number))).normalize().as_tuple()
    text = "".join(map(str, digits))
    assert isinstance(exponent, int)
    return text, len(text) - 1 + exponent


def _e_format(number: float, min_exponent_digits: int) -> str:
    digits, exponent = _shortest_digits(number)
    mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
    sign = "-" if exponent < 0 else "+"
    minus = "-" if number < 0 else ""
    return f"{minus}{mantissa}e{sign}{abs(exponent):0{min_exponent_digits}d}"


def _f_format(number: float) -> str:
    return format(Decimal(repr(number)).normalize(), "f")


def go_float_g(number: float) -> str:
    """Go's strconv.FormatFloat(f, 'g', -1, 64), which is also fmt's %v of a float64."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if number == 0:
        return "-0" if math.copysign(1, number) < 0 else "0"
    _, exponent = _shortest_digits(number)
    if exponent < -4 or exponent >= 6:  # the shortest form decides with precision 6
        return _e_format(number, 2)
    return _f_format(number)


def go_json_float(number: float) -> str:
    """encoding/json's text for a float64; ValueError for NaN and infinities."""
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"json: unsupported value: {go_float_g(number)}")
    magnitude = abs(number)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return _e_format(number, 1)  # encoding/json trims e-07 to e-7
    if number == 0:
        return "-0" if math.copysign(1, number) < 0 else "0"
    return _f_format(number)


def go_percent_s(value: Any) -> str:
    """fmt's %s of a non-string map key, as in "expected only string keys, got '%s'"."""
    if isinstance(value, GoTime):
        return value.go_string()
    if value is None:
        return "%!s(<nil>)"
    if isinstance(value, bool):
        return f"%!s(bool={'true' if value else 'false'})"
    if isinstance(value, GoUint):
        return f"%!s(uint64={value.value})"
    if isinstance(value, int):
        return f"%!s(int={value})"
    if isinstance(value, float):
        return f"%!s(float64={go_float_g(value)})"
    return str(value)


def go_percent_v(value: Any) -> str:
    """fmt's %v of a map key, as Pulumi names a non-string key inside a config object."""
    if isinstance(value, GoTime):
        return value.go_string()
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, GoUint):
        return str(value.value)
    if isinstance(value, float):
        return go_float_g(value)
    return str(value)

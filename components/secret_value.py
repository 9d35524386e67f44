"""A plaintext secret held in memory that refuses to show itself by accident."""

from __future__ import annotations

from typing import Final

_REDACTED: Final = "[secret]"


class SecretValue:
    """Wraps a secret string so that repr(), str() and f-strings never print it.

    Settings objects are dataclasses whose reprs end up in tracebacks and logs;
    wrapping each secret keeps those paths clean. Call `reveal()` only where the
    value is handed to Pulumi as a secret Output or to a derivation.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue({_REDACTED})"

    def __str__(self) -> str:
        return _REDACTED

    def __format__(self, format_spec: str) -> str:
        return _REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("SecretValue", self._value))

    def __len__(self) -> int:
        return len(self._value)

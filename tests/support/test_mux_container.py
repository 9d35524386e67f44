"""The compose substitution model the mux container checks rely on (compose-go's rules)."""

from __future__ import annotations

import pytest

from tests.support.mux_container import ComposeInterpolationError, interpolate

ENV = {"SET": "value", "EMPTY": ""}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain", "plain"),
        ("$$", "$"),
        ('exec "$$@"', 'exec "$@"'),
        ("$$(printf x)", "$(printf x)"),
        ("$$SET", "$SET"),  # escaped: the shell's variable, not compose's
        ("$SET and ${SET}", "value and value"),
        ("${UNSET}", ""),
        ("${UNSET:-fallback} ${EMPTY:-fallback} ${EMPTY-fallback}", "fallback fallback "),
        ("${SET:?needed}", "value"),
    ],
)
def test_substitution_follows_compose_go(template: str, expected: str) -> None:
    assert interpolate(template, ENV) == expected


@pytest.mark.parametrize("template", ["$(printf x)", "cost: $5", "${EMPTY:?needed}", "${UNSET?x}"])
def test_what_compose_go_refuses_is_refused(template: str) -> None:
    with pytest.raises(ComposeInterpolationError):
        interpolate(template, ENV)

"""SecretValue: a secret held in settings never prints itself, however it is formatted."""

from __future__ import annotations

import logging

import pytest

from components.secret_value import SecretValue

VALUE = "sv-distinctive-secret-0123456789"


def test_every_way_of_printing_a_secret_value_shows_only_a_marker() -> None:
    secret = SecretValue(VALUE)
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>40}"]
    shown += [repr([secret]), repr({"key": secret}), "%s %r" % (secret, secret)]  # noqa: UP031
    for text in shown:
        assert VALUE not in text, text
        assert "[secret]" in text, text


def test_a_logged_secret_value_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("openclaw-phala-test").info(
            "settings: %s %r", SecretValue(VALUE), [SecretValue(VALUE)]
        )
    assert VALUE not in caplog.text
    assert "[secret]" in caplog.text


def test_reveal_returns_the_value_and_equality_compares_values() -> None:
    assert SecretValue(VALUE).reveal() == VALUE
    assert SecretValue(VALUE) == SecretValue(VALUE)
    assert SecretValue(VALUE) != SecretValue(VALUE + "x")
    assert len(SecretValue(VALUE)) == len(VALUE)

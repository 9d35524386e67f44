"""Scrubbing secrets out of everything the driver prints."""

from __future__ import annotations

from driver.scrub import REDACTED, Scrubber

# --------------------------------------------------------------------------- Scrubber


def test_scrubber_replaces_secrets_raw_and_as_json_escaped() -> None:
    scrub = Scrubber(['pa"ss\\word', "ünïcode-secret"])

    text = 'raw pa"ss\\word json "pa\\"ss\\\\word" ascii \\u00fcn\\u00efcode-secret ünïcode-secret'

    assert scrub(text) == (f'raw {REDACTED} json "{REDACTED}" ascii {REDACTED} {REDACTED}')


def test_scrubber_replaces_long_lines_of_a_multiline_secret_alone() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nab\n-----END PRIVATE KEY-----"
    scrub = Scrubber([pem])

    echoed = scrub("error near line: MIIEvQIBADANBgkqhkiG9w0B")

    assert "MIIEvQIBADANBgkqhkiG9w0B" not in echoed
    assert scrub("ab is a short line and stays") == "ab is a short line and stays"


def test_scrubber_replaces_the_longest_secret_whole_and_ignores_empty_ones() -> None:
    scrub = Scrubber(["", "token", "token-with-suffix"])

    assert scrub("token-with-suffix and token") == f"{REDACTED} and {REDACTED}"
    assert Scrubber([""])("nothing to hide") == "nothing to hide"

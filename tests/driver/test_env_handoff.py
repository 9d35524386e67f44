"""The CVM env as the phala CLI reads it back, byte for byte, and the private workdir."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from driver.env_handoff import (
    WORKDIR_PREFIX,
    EnvFileError,
    dotenv_line,
    render_env_file,
    sweep_orphaned_workdirs,
)

# --------------------------------------------------------------------------- the CLI's parser

# The dotenv parser bundled in phala@1.1.18 (node_modules/phala/dist/index.js), ported
# line for line: CR/CRLF become LF first, then this regex runs over the whole text.
_CLI_DOTENV_LINE = re.compile(
    r"""(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)""",
    re.MULTILINE,
)
_CLI_UNQUOTE = re.compile(r"""^(['"`])([\s\S]*)\1$""", re.MULTILINE)


def parse_like_phala_cli(text: str) -> dict[str, str]:
    parsed: dict[str, str] = {}
    text = re.sub(r"\r\n?", "\n", text)
    for match in _CLI_DOTENV_LINE.finditer(text):
        value = (match.group(2) or "").strip()
        first = value[:1]
        value = _CLI_UNQUOTE.sub(r"\2", value)
        if first == '"':
            value = value.replace("\\n", "\n").replace("\\r", "\r")
        parsed[match.group(1)] = value
    return parsed


HOSTILE_VALUES = {
    "SINGLE_QUOTE": "it's",
    "DOUBLE_QUOTE": 'say "hi"',
    "BACKTICK": "run `id`",
    "SINGLE_AND_BACKTICK": "it's `id`",
    "SINGLE_AND_DOUBLE": 'it\'s "x"',
    "SPACES": "a b  c",
    "HASH": "abc#def # ghi",
    "DOLLAR": "$HOME ${USER} $(id)",
    "EQUALS": "a=b==c=",
    "BACKSLASHES": "C:\\dir\\new\\t\\\\",
    "LITERAL_BACKSLASH_N": "one\\ntwo",
    "REAL_NEWLINES": "-----BEGIN KEY-----\nabc\ndef\n-----END KEY-----\n",
    "CARRIAGE_RETURNS": "windows\r\nline\rend",
    "CR_WITH_QUOTES_AND_BACKSLASH": "it's `x`\r\\",
    "UNICODE": "héllo ✓ 日本語 🚀",
    "PADDED": "  leading and trailing  ",
    "EMPTY": "",
    "TRAILING_BACKSLASH": "ends with \\",
    "LOOKS_LIKE_ANOTHER_LINE": "x\nOTHER=injected",
}


# --------------------------------------------------------------------------- env file


def test_render_env_file_round_trips_hostile_values_through_the_cli_parser() -> None:
    rendered = render_env_file(HOSTILE_VALUES)

    assert parse_like_phala_cli(rendered) == HOSTILE_VALUES


def test_dotenv_line_prefers_single_quotes_then_backticks_then_double_quotes() -> None:
    assert dotenv_line("A", "plain") == "A='plain'"
    assert dotenv_line("A", "it's") == "A=`it's`"
    assert dotenv_line("A", "it's `x`") == 'A="it\'s `x`"'


def test_dotenv_line_carries_a_carriage_return_only_as_a_double_quoted_escape() -> None:
    assert dotenv_line("A", "x\ry") == 'A="x\\ry"'


@pytest.mark.parametrize(
    "value",
    [
        "all three ' ` \" quotes",
        "single ' backtick ` and literal \\n",
        'carriage\r return with " quote',
        "carriage\r return with literal \\r",
    ],
)
def test_dotenv_line_refuses_a_value_it_cannot_carry_and_names_only_the_key(value: str) -> None:
    with pytest.raises(EnvFileError) as raised:
        dotenv_line("MY_SECRET", value)

    message = str(raised.value)
    assert "MY_SECRET" in message
    assert value not in message
    assert "phala CLI" in message


@pytest.mark.parametrize("key", ["", "1ABC", "A-B", "A B", "A=B", "Ä"])
def test_dotenv_line_rejects_names_the_cli_would_misread(key: str) -> None:
    with pytest.raises(EnvFileError, match="invalid env var name"):
        dotenv_line(key, "value")


def test_render_env_file_keeps_the_given_order_one_line_per_key() -> None:
    rendered = render_env_file({"B": "2", "A": "1"})

    assert rendered == "B='2'\nA='1'\n"
    assert render_env_file({}) == ""


# --------------------------------------------------------------------------- orphaned workdirs


def test_a_killed_drivers_workdir_is_swept_and_live_ones_are_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["sleep", "0"])
    dead.wait()  # its pid is gone now
    alive = subprocess.Popen(["sleep", "30"])
    try:
        orphan = tmp_path / f"{WORKDIR_PREFIX}{dead.pid}-abc"
        running = tmp_path / f"{WORKDIR_PREFIX}{alive.pid}-def"
        unrelated = tmp_path / f"{WORKDIR_PREFIX}not-a-pid"
        for folder in (orphan, running, unrelated):
            folder.mkdir()
            (folder / "deploy.env").write_text("MASTER_KEY=secret\n")
        assert sweep_orphaned_workdirs(tmp_path) == [orphan]
        assert not orphan.exists() and running.exists() and unrelated.exists()
    finally:
        alive.kill()
        alive.wait()

"""What an env value looks like once dstack has delivered it to a container.

Standard library only (the deploy driver imports it). A model of the path inside
the CVM, faithful to these sources:

1. dstack-util decrypts the env (JSON, so every character survives) and writes it
   to ``/dstack/.host-shared/.decrypted-env`` with ``convert_env_to_str``, which
   quotes each value with ``escape_value`` (dstack ``dstack-util/src/parse_env_file.rs``,
   called from ``Stage1::write_env_file`` in ``dstack-util/src/system_setup.rs``).
   ``escape_value`` double-quotes a value holding any of `` \\t|&;<>()$`\\"'\\n`` and
   space, then writes a line feed as the two characters backslash-n and puts a
   backslash before ``"``, ``$`` and `````; a backslash or carriage return is written
   as it is.
2. systemd loads that file into ``app-compose.service`` (``EnvironmentFile=``,
   dstack ``basefiles/app-compose.service``) with ``parse_env_file_internal``
   (systemd ``src/basic/env-file.c``). Inside double quotes a backslash is dropped
   only before ``"``, ``\\``, ````` or ``$`` (and a backslash-line-feed is a line
   continuation); before anything else, ``n`` included, it stays. Unquoted, a
   carriage return or line feed ends the value and trailing blanks are chomped.
3. ``app-compose.sh`` runs ``docker compose up`` with that environment; compose
   substitutes ``${NAME}`` in the compose file with the value as it is.

So a line feed never survives: a PEM arrives with literal ``\\n`` between its lines.
"""

from __future__ import annotations

from collections.abc import Mapping

# dstack escape_value: any of these makes it double-quote the value.
_DSTACK_QUOTE_TRIGGERS = frozenset(" \t|&;<>()$`\\\"'\n")
_DSTACK_ESCAPES = {"\n": "\\n", '"': '\\"', "$": "\\$", "`": "\\`"}
# systemd SHELL_NEED_ESCAPE: inside double quotes, a backslash before these is dropped.
_SYSTEMD_UNESCAPED_IN_DOUBLE_QUOTES = frozenset('"\\`$')
_NEWLINE = "\n\r"
_WHITESPACE = " \t\n\r"


def dstack_env_line(key: str, value: str) -> str:
    """One line of ``.decrypted-env`` as dstack-util writes it (with its line feed)."""
    escaped = "".join(_DSTACK_ESCAPES.get(c, c) for c in value)
    if any(c in _DSTACK_QUOTE_TRIGGERS for c in value):
        escaped = f'"{escaped}"'
    return f"{key}={escaped}\n"


def systemd_environment_file(text: str) -> dict[str, str]:
    """The variables systemd's EnvironmentFile= parser reads from ``text``.

    The state machine of systemd's parse_env_file_internal, for the states dstack's
    output can reach plus comments and single quotes.
    """
    result: dict[str, str] = {}
    state = "pre_key"
    key: list[str] = []
    value: list[str] = []
    last_value_whitespace: int | None = None

    def push() -> None:
        result["".join(key).rstrip(" \t")] = "".join(value)

    for c in text:
        if state == "pre_key":
            if c in "#;":
                state = "comment"
            elif c not in _WHITESPACE:
                state, key, value = "key", [c], []
        elif state == "key":
            if c in _NEWLINE:
                state = "pre_key"
            elif c == "=":
                state, last_value_whitespace = "pre_value", None
            else:
                key.append(c)
        elif state == "pre_value":
            if c in _NEWLINE:
                push()
                state = "pre_key"
            elif c == "'":
                state = "single_quote"
            elif c == '"':
                state = "double_quote"
            elif c == "\\":
                state = "value_escape"
            elif c not in _WHITESPACE:
                state = "value"
                value.append(c)
        elif state == "value":
            if c in _NEWLINE:
                if last_value_whitespace is not None:
                    del value[last_value_whitespace:]
                push()
                state = "pre_key"
            elif c == "\\":
                state, last_value_whitespace = "value_escape", None
            else:
                if c not in _WHITESPACE:
                    last_value_whitespace = None
                elif last_value_whitespace is None:
                    last_value_whitespace = len(value)
                value.append(c)
        elif state == "value_escape":
            state = "value"
            if c not in _NEWLINE:
                value.append(c)
        elif state == "single_quote":
            if c == "'":
                state = "pre_value"
            else:
                value.append(c)
        elif state == "double_quote":
            if c == '"':
                state = "pre_value"
            elif c == "\\":
                state = "double_quote_escape"
            else:
                value.append(c)
        elif state == "double_quote_escape":
            state = "double_quote"
            if c in _SYSTEMD_UNESCAPED_IN_DOUBLE_QUOTES:
                value.append(c)
            elif c != "\n":
                value.extend(("\\", c))
        elif state == "comment" and c in _NEWLINE:
            state = "pre_key"
    if state in (
        "pre_value",
        "value",
        "value_escape",
        "single_quote",
        "double_quote",
        "double_quote_escape",
    ):
        if state == "value" and last_value_whitespace is not None:
            del value[last_value_whitespace:]
        push()
    return result


def delivered_env(env: Mapping[str, str]) -> dict[str, str]:
    """What the compose file's ``${NAME}`` substitutes, for each var dstack delivers."""
    text = "".join(dstack_env_line(key, value) for key, value in sorted(env.items()))
    return systemd_environment_file(text)


def delivery_problem(value: str) -> str | None:
    """Why ``value`` would reach the container altered, or None when it arrives intact."""
    if delivered_env({"VALUE": value}).get("VALUE") == value:
        return None
    if "\n" in value:
        return "it has a line break, which dstack hands over as a literal backslash-n"
    if "\r" in value:
        return "it has a carriage return, which dstack does not escape"
    return 'it has a backslash before ", \\, ` or $ (or at its end), which dstack does not escape'

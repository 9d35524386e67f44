"""Config checks that look across fields, or at keys outside the project's namespace.

Pure helpers for components/settings.py: each returns what is wrong as plain text (or
(key, message) pairs); settings.py turns them into ConfigProblems naming the key.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable
from typing import Final

MAX_SSH_PUBLIC_KEY_LENGTH: Final = 8192  # an RSA-16384 key line is about 2,800 characters
MAX_INSTANCE_TYPE_LENGTH: Final = 64
# Namespaces of providers and of Pulumi itself: their keys are not ours to judge.
_FOREIGN_OK: Final = frozenset({"pulumi", "cloudflare", "command", "aws", "gcp", "azure"})


def misplaced_keys(
    keys: Iterable[str], project: str, known: Iterable[str]
) -> list[tuple[str, str]]:
    """(key, message) for config keys meant for this project but under a mistyped
    namespace (`openclaw_phala:muxName`). A key without a namespace is not one of them:
    Pulumi reads `muxName` in a stack file as `openclaw-phala:muxName`."""
    known_names = sorted(set(known))
    found: list[tuple[str, str]] = []
    for key in sorted(set(keys)):
        namespace, _, name = key.rpartition(":")
        if not namespace or namespace == project or namespace in _FOREIGN_OK:
            continue
        similarity = difflib.SequenceMatcher(None, namespace.lower(), project).ratio()
        if similarity < 0.75:  # another tool's namespace, not a typo of ours
            continue
        close = difflib.get_close_matches(name, known_names, n=1)
        suggestion = f"{project}:{name if name in known_names else (close or [name])[0]}"
        found.append(
            (
                key,
                f"is under namespace '{namespace}', so the program never reads it; "
                f"did you mean '{suggestion}'?",
            )
        )
    return found


def outside_config_message(key: str, project: str, known: Iterable[str]) -> str:
    """What to tell about a stack file's top-level key that is not Pulumi's: Pulumi
    drops it without a word, so a setting written there silently does nothing."""
    name = key.rpartition(":")[2]
    close = difflib.get_close_matches(name, sorted(set(known)), n=1)
    hint = f"; did you mean 'config: {project}:{close[0]}'?" if close else ""
    return f"top-level key '{key}' is outside config:, so Pulumi ignores it{hint}"


def cvm_id_identity(cvm_id: str) -> str:
    """One spelling per CVM id: case, dashes and the app_ prefix do not make another CVM."""
    return cvm_id.lower().replace("-", "").removeprefix("app_")


def duplicate_cvm_ids(owners: Iterable[tuple[str, str, str | None]]) -> list[tuple[str, str]]:
    """(key, message) for each (key, owner, cvmId) whose CVM id an earlier owner uses."""
    first: dict[str, str] = {}
    found: list[tuple[str, str]] = []
    for key, owner, cvm_id in owners:
        if not cvm_id:
            continue
        identity = cvm_id_identity(cvm_id)
        if identity in first:
            found.append(
                (
                    key,
                    f"CVM id '{cvm_id}' is already used by {first[identity]}; one CVM "
                    "cannot be adopted twice",
                )
            )
        else:
            first[identity] = owner
    return found


def s3_prefix_dot_segment(prefix: str) -> str | None:
    """Why a key prefix with a '.' or '..' segment is refused, or None."""
    for segment in prefix.split("/"):
        if segment in (".", ".."):
            return (
                f"has a '{segment}' segment; S3 keys take it literally, but rclone and "
                "other tools read it as a path step, so the state would land elsewhere"
            )
    return None


def non_ascii_reason(text: str, what: str) -> str | None:
    """Names the first character outside ASCII, which Phala's name rules do not allow."""
    match = re.search(r"[^\x00-\x7f]", text)
    if match is None:
        return None
    character = match.group()
    kind = "letter" if character.isalpha() else "character"
    name = unicodedata.name(character, "").lower() or f"U+{ord(character):04X}"
    return (
        f"'{character}' ({name}) at position {match.start() + 1} is a non-ASCII {kind}; "
        f"{what} may use only ASCII letters a-z and A-Z"
    )


def too_long(value: str, limit: int) -> str | None:
    return f"is {len(value)} characters long; at most {limit}" if len(value) > limit else None

"""Config checks that look across fields, or at keys outside the project's namespace.

Pure helpers for components/config_parser.py and the offline plan: each returns what is
wrong as plain text (or (key, message) pairs), turned into ConfigProblems naming the key.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Final

# Namespaces whose keys Pulumi itself reads: Pulumi's own, and the providers this program
# uses (the engine hands `cloudflare:*` and `command:*` to their providers). A key of ours
# there does reach someone, so it is a warning; anywhere else nobody reads it.
PULUMI_READ_NAMESPACES: Final = frozenset({"pulumi", "cloudflare", "command"})
# Other tools' namespaces, whose own keys are not ours to judge.
_FOREIGN_OK: Final = PULUMI_READ_NAMESPACES | frozenset({"aws", "gcp", "azure"})


def misplaced_keys(
    keys: Iterable[str], project: str, known: Iterable[str]
) -> list[tuple[str, str, bool]]:
    """(key, message, refused) for config keys meant for this project but outside its
    namespace, which the program never reads:
    - one of our key names under any other namespace (`openclaw:tenants`, `phala:muxName`),
      or under the empty one (`:tenants`): refused, or only warned where Pulumi itself
      reads that namespace (`cloudflare:tenants` goes to the cloudflare provider);
    - any key under a near miss of our namespace (`openclaw_phala:muxNmae`): refused.
    A key without a namespace is not one of them: Pulumi reads `muxName` in a stack file
    as `openclaw-phala:muxName`."""
    known_names = sorted(set(known))
    found: list[tuple[str, str, bool]] = []
    for key in sorted(set(keys)):
        if ":" not in key:
            continue
        namespace, _, name = key.rpartition(":")
        if namespace == project:
            continue
        ours = name in known_names
        near_miss = (
            difflib.SequenceMatcher(None, namespace.lower(), project).ratio() >= 0.75
            and namespace not in _FOREIGN_OK
        )
        if not ours and not near_miss and namespace != "":
            continue  # another tool's key
        close = difflib.get_close_matches(name, known_names, n=1)
        suggestion = f"{project}:{name if ours else (close or [name])[0]}"
        where = "has an empty namespace" if namespace == "" else f"is under namespace '{namespace}'"
        if ours and namespace in PULUMI_READ_NAMESPACES:
            reader = "Pulumi" if namespace == "pulumi" else f"the {namespace} provider"
            message = (
                f"{where}, so {reader} reads it and this program does not; "
                f"did you mean '{suggestion}'?"
            )
            found.append((key, message, False))
            continue
        message = f"{where}, so the program never reads it; did you mean '{suggestion}'?"
        found.append((key, message, True))
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

"""What changes between two plans, grouped by tenant, with the dangerous changes flagged."""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from components.phala_cvm import REPLACEMENT_TRIGGER_NAMES

FLAG_REPLACES = "REPLACES CVM"
FLAG_DELETES = "DELETES CVM"
FLAG_CREATES = "creates CVM"
FLAG_DATA = "TOUCHES LOCAL-VOLUME DATA"
FLAG_REFUSED = "refused by protection unless allowDataLoss is set"
IGNORED_FIELDS = frozenset({"kind", "key", "owner"})


@dataclass
class OwnerChanges:
    owner: str
    flags: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def flag(self, text: str) -> None:
        if text not in self.flags:
            self.flags.append(text)


def _holds_local_data(block: dict[str, Any]) -> bool:
    return block["kind"] == "cvm" and block["storage"] != "s3"


def _field_lines(name: str, old: Any, new: Any) -> list[str]:
    if name == "compose":
        diff = difflib.unified_diff(
            old.splitlines(), new.splitlines(), "compose (base)", "compose (head)", lineterm=""
        )
        return ["  compose:", *[f"    {line}" for line in diff]]
    return [f"  {name}: {old!r} -> {new!r}"]


def diff_plans(base: list[dict[str, Any]], head: list[dict[str, Any]]) -> list[OwnerChanges]:
    before = {block["key"]: block for block in base}
    after = {block["key"]: block for block in head}
    changes: dict[str, OwnerChanges] = defaultdict(lambda: OwnerChanges(""))

    def entry(block: dict[str, Any]) -> OwnerChanges:
        owner = block.get("owner", block["key"])
        change = changes[owner]
        change.owner = owner
        return change

    for key in sorted(before.keys() - after.keys()):
        block = before[key]
        change = entry(block)
        change.lines.append(f"- removed {key}")
        if block["kind"] == "cvm":
            change.flag(FLAG_DELETES)
            if _holds_local_data(block):
                change.flag(FLAG_DATA)
                if block["protectedFromReplacement"]:
                    change.flag(FLAG_REFUSED)
        if block["kind"] == "bucket" and block.get("keptWhenRemoved"):
            change.lines.append(f"  (bucket {block['name']} is kept: its data is not deleted)")

    for key in sorted(after.keys() - before.keys()):
        block = after[key]
        change = entry(block)
        change.lines.append(f"+ added {key}")
        if block["kind"] == "cvm":
            change.flag(FLAG_CREATES)

    for key in sorted(before.keys() & after.keys()):
        old, new = before[key], after[key]
        changed = [
            name
            for name in sorted(set(old) | set(new))
            if name not in IGNORED_FIELDS and old.get(name) != new.get(name)
        ]
        if not changed:
            continue
        change = entry(new)
        change.lines.append(f"~ changed {key}")
        for name in changed:
            change.lines += _field_lines(name, old.get(name), new.get(name))
        if old["kind"] != "cvm":
            continue
        if any(name in REPLACEMENT_TRIGGER_NAMES for name in changed):
            change.flag(FLAG_REPLACES)
            if _holds_local_data(old):
                change.flag(FLAG_DATA)
                if old["protectedFromReplacement"]:
                    change.flag(FLAG_REFUSED)
        if "storage" in changed:
            change.flag(FLAG_DATA)
    return sorted(changes.values(), key=lambda c: c.owner)


def render_diff(changes: list[OwnerChanges], stack: str, base: str, head: str) -> str:
    lines = [f"# openclaw-phala offline plan diff: stack {stack}, {base} -> {head}", ""]
    if not changes:
        return "\n".join([*lines, "No changes to the desired state.", ""])
    for change in changes:
        flags = f"  [{'; '.join(change.flags)}]" if change.flags else ""
        lines += [f"## {change.owner}{flags}", *change.lines, ""]
    return "\n".join(lines)

"""What changes between two plans: one operation per resource, in the engine's words
(create, update, replace, delete), grouped by tenant, with the dangerous changes flagged,
values printed as the operator writes them, and a mass removal of tenants called out as
`pulumi up` will judge it (components/tenant_removal.py)."""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from components.phala_cvm import REPLACEMENT_TRIGGER_NAMES
from components.tenant_removal import (
    OPT_IN_SETTING,
    TenantRemoval,
    opt_in_commands,
    tenant_removal,
)

FLAG_REPLACES = "REPLACES CVM"
FLAG_DELETES = "DELETES CVM"
FLAG_CREATES = "creates CVM"
FLAG_DATA = "TOUCHES LOCAL-VOLUME DATA"
# components/data_guards.py refuses these at preview; the guard Command on destroy.
FLAG_REFUSED_REPLACE = "refused unless {opt_in} is set"
FLAG_REFUSED_DELETE = "refused unless {opt_in} was deployed before the removal"
FLAG_NEW_BUCKET = (
    "NEW EMPTY BUCKET: its state stays in the old one; refused unless allowNewBucket is set"
)
IGNORED_FIELDS = frozenset({"kind", "key", "owner", "resource"})
# Resource options: the engine records a change to them without an operation.
OPTION_FIELDS = frozenset({"protectedFromReplacement", "protected", "keptWhenRemoved"})
# Per kind, the fields whose change makes the engine replace the resource.
REPLACED_WHEN = {
    "cvm": frozenset(REPLACEMENT_TRIGGER_NAMES),
    "guard": frozenset(),
    # `jurisdiction` through the program's replace_on_changes (components/tenant_storage.py).
    "bucket": frozenset({"name", "accountId", "jurisdiction"}),
    "token": frozenset({"accountId"}),
    "stack-reference": frozenset({"stack"}),
}
OPS = ("create", "update", "replace", "delete")
_SIGNS = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}


@dataclass
class OwnerChanges:
    owner: str
    flags: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def flag(self, text: str) -> None:
        if text not in self.flags:
            self.flags.append(text)


@dataclass(frozen=True)
class ResourceChange:
    op: str  # one of OPS
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    changed: tuple[str, ...] = ()

    @property
    def block(self) -> dict[str, Any]:
        block = self.new if self.new is not None else self.old
        assert block is not None
        return block


def _identity(block: dict[str, Any], by_resource: bool) -> str:
    return block["resource"] if by_resource else block["key"]


def resource_changes(
    base: list[dict[str, Any]], head: list[dict[str, Any]]
) -> dict[str, ResourceChange]:
    """Resource identity -> what the engine will do to it, for every resource that changes.

    Resources are matched by their Pulumi name (as the engine matches URNs), or by key
    when the base plan predates names in plans."""
    by_resource = all("resource" in block for block in (*base, *head))
    before = {_identity(b, by_resource): b for b in base if b["kind"] in REPLACED_WHEN}
    after = {_identity(b, by_resource): b for b in head if b["kind"] in REPLACED_WHEN}
    changes: dict[str, ResourceChange] = {}
    for identity in before.keys() - after.keys():
        changes[identity] = ResourceChange("delete", before[identity], None)
    for identity in after.keys() - before.keys():
        changes[identity] = ResourceChange("create", None, after[identity])
    for identity in before.keys() & after.keys():
        old, new = before[identity], after[identity]
        changed = tuple(
            name
            for name in sorted(set(old) & set(new))
            if name not in IGNORED_FIELDS | OPTION_FIELDS and _differs(name, old[name], new[name])
        )
        if changed:
            replaced = any(name in REPLACED_WHEN[old["kind"]] for name in changed)
            changes[identity] = ResourceChange(
                "replace" if replaced else "update", old, new, changed
            )
    return changes


def env_by_name(entries: list[Any]) -> dict[str, dict[str, Any]]:
    """A CVM's env entries by name. A plan from before values were shown lists only
    names ("MASTER_KEY (secret)"): its entries are empty, so they compare by name."""
    return {
        entry.removesuffix(" (secret)") if isinstance(entry, str) else entry["name"]: (
            {} if isinstance(entry, str) else entry
        )
        for entry in entries
    }


def _entry_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether one variable changed, as far as both plans can tell: a secret by its
    keyed fingerprint (present only when both plans had the diff's key)."""
    if not old or not new:  # one plan names the variable only
        return False
    if old.get("secret") != new.get("secret"):
        return True
    if old.get("secret"):
        return old.get("fingerprint") != new.get("fingerprint")
    return old.get("value") != new.get("value")


def env_changes(old: list[Any], new: list[Any]) -> dict[str, str]:
    """Variable -> how it changes: added, removed, or changed."""
    before, after = env_by_name(old), env_by_name(new)
    changes = {name: "removed" for name in before.keys() - after.keys()}
    changes |= {name: "added" for name in after.keys() - before.keys()}
    changes |= {
        name: "changed"
        for name in before.keys() & after.keys()
        if _entry_changed(before[name], after[name])
    }
    return dict(sorted(changes.items()))


def _differs(name: str, old: Any, new: Any) -> bool:
    if name == "env" and isinstance(old, list) and isinstance(new, list):
        return bool(env_changes(old, new))
    return bool(old != new)


def _env_lines(old: list[Any], new: list[Any]) -> list[str]:
    before, after = env_by_name(old), env_by_name(new)
    lines = []
    for name, how in env_changes(old, new).items():
        entry = after.get(name) or before.get(name) or {}
        if entry.get("secret") or (before.get(name) or {}).get("secret"):
            what = f"{how} (secret: value not shown)" if how == "changed" else how
            lines.append(f"  env {name}: {what}")
        elif how == "changed":
            old_value, new_value = before[name]["value"], after[name]["value"]
            lines.append(f"  env {name}: {format_value(old_value)} -> {format_value(new_value)}")
        elif how == "added":
            lines.append(f"  env {name}: added {format_value(entry.get('value'))}")
        else:
            lines.append(f"  env {name}: removed")
    return lines


def _holds_local_data(block: dict[str, Any]) -> bool:
    return block["kind"] == "cvm" and block["storage"] != "s3"


def format_value(value: Any) -> str:
    """A value as the operator writes it in a stack file: 40 (never 40.0), true, 'text'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {format_value(item)}" for key, item in value.items()) + "}"
    return repr(str(value))


def _field_lines(name: str, old: Any, new: Any) -> list[str]:
    if name == "compose":
        diff = difflib.unified_diff(
            old.splitlines(), new.splitlines(), "compose (base)", "compose (head)", lineterm=""
        )
        return ["  compose:", *[f"    {line}" for line in diff]]
    if name == "env":
        return _env_lines(old, new)
    if isinstance(old, dict) and isinstance(new, dict):  # one line per changed entry
        label = "driver" if name in ("driverSettings", "driverCommands") else name
        return [
            f"  {label} {key}: {format_value(old.get(key))} -> {format_value(new.get(key))}"
            for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)
        ]
    return [f"  {name}: {format_value(old)} -> {format_value(new)}"]


def diff_plans(base: list[dict[str, Any]], head: list[dict[str, Any]]) -> list[OwnerChanges]:
    changes: dict[str, OwnerChanges] = defaultdict(lambda: OwnerChanges(""))
    ordered = sorted(
        resource_changes(base, head).values(),
        key=lambda c: (OPS.index(c.op), c.block["key"]),
    )
    for change in ordered:
        block = change.block
        owner = block.get("owner", block["key"])
        entry = changes[owner]
        entry.owner = owner
        entry.lines.append(f"{_SIGNS[change.op]} {change.op} {block['key']}")
        if change.op == "update" or change.op == "replace":
            assert change.old is not None and change.new is not None
            for name in change.changed:
                entry.lines += _field_lines(name, change.old.get(name), change.new.get(name))
        if block["kind"] == "bucket" and change.op == "delete" and block.get("keptWhenRemoved"):
            entry.lines.append(f"  (bucket {block['name']} is kept: its data is not deleted)")
        if block["kind"] == "bucket" and change.op == "replace":
            entry.flag(FLAG_NEW_BUCKET)
        if block["kind"] != "cvm":
            continue
        if change.op == "create":
            entry.flag(FLAG_CREATES)
            continue
        if "storage" in change.changed:
            entry.flag(FLAG_DATA)
        if change.op == "update":
            continue
        entry.flag(FLAG_DELETES if change.op == "delete" else FLAG_REPLACES)
        if _holds_local_data(block):
            entry.flag(FLAG_DATA)
            opt_in = "muxAllowDataLoss" if block["role"] == "mux" else "allowDataLoss"
            # A replacement is refused unless the new config allows it; a removal unless
            # the deployed one did (the removed tenant's config is gone).
            if change.op == "replace" and change.block["protectedFromReplacement"]:
                entry.flag(FLAG_REFUSED_REPLACE.format(opt_in=opt_in))
            if change.op == "delete" and change.block["protectedFromReplacement"]:
                entry.flag(FLAG_REFUSED_DELETE.format(opt_in=opt_in))
    return sorted(changes.values(), key=lambda c: c.owner)


def _tenants_of(plan: list[dict[str, Any]]) -> set[str]:
    return {
        block["owner"].removeprefix("tenant/")
        for block in plan
        if block.get("kind") == "cvm" and str(block.get("owner", "")).startswith("tenant/")
    }


def tenant_removal_of(
    base: list[dict[str, Any]], head: list[dict[str, Any]]
) -> TenantRemoval | None:
    """The tenants the head removes from those the base runs, judged as `pulumi up` will
    judge them against the last deployment (None when no tenant goes)."""
    allowed: list[str] = next(
        (
            block.get("value", [])
            for block in head
            if block.get("kind") == "setting" and block.get("setting") == OPT_IN_SETTING
        ),
        [],
    )
    removal = tenant_removal(_tenants_of(base), _tenants_of(head), allowed)
    return removal if removal.removed else None


def removal_lines(removal: TenantRemoval | None) -> list[str]:
    if removal is None or not removal.guarded:
        return []
    names = ", ".join(removal.removed)
    what = f"REMOVES {len(removal.removed)} OF {len(removal.running)} RUNNING TENANTS AT ONCE"
    if removal.refused:
        verdict = (
            f"`pulumi up` refuses this unless {OPT_IN_SETTING} lists them for that run: "
            f"{opt_in_commands(removal.removed)}"
        )
    else:
        verdict = f"allowed for this run by {OPT_IN_SETTING}"
    return [f"!! {what}: {names}", f"   {verdict}", ""]


def render_diff(
    changes: list[OwnerChanges],
    stack: str,
    base: str,
    head: str,
    removal: TenantRemoval | None = None,
) -> str:
    lines = [f"# openclaw-phala offline plan diff: stack {stack}, {base} -> {head}", ""]
    lines += removal_lines(removal)
    if not changes:
        return "\n".join([*lines, "No changes to the desired state.", ""])
    for change in changes:
        flags = f"  [{'; '.join(change.flags)}]" if change.flags else ""
        lines += [f"## {change.owner}{flags}", *change.lines, ""]
    return "\n".join(lines)

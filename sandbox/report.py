"""What the sandbox prints: progress, the stack's outputs, the calls the local APIs got.
Pure functions of their inputs (no engine, no processes), so each is tested alone."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

SECRET_ELIDED = "<secret>"  # noqa: S105 - a placeholder


class Progress:
    """`[sandbox  12s] step` lines, flushed at once, and the lines of a tool indented."""

    def __init__(self, command: str, stream: TextIO | None = None) -> None:
        self.command = command
        self.stream = stream or sys.stdout
        self.started = time.monotonic()

    def step(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        self.say(f"[{self.command} {elapsed:5.1f}s] {message}")

    def say(self, line: str = "") -> None:
        print(line, file=self.stream, flush=True)

    def tool_line(self, line: str) -> None:
        self.say(f"    | {line}" if line else "    |")

    def lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.say(line)


def elide_token(dashboard_url: str) -> str:
    """A dashboard URL with the token after `#token=` replaced by a placeholder."""
    parts = urlsplit(dashboard_url)
    fragment = "token=" + SECRET_ELIDED if parts.fragment.startswith("token=") else parts.fragment
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, fragment))


def table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def outputs_lines(outputs: Mapping[str, Any]) -> list[str]:
    """The stack outputs an operator works from (README, "Stack outputs"), secrets elided."""
    lines: list[str] = []
    mux = outputs.get("mux")
    if isinstance(mux, Mapping):
        lines.append(
            f"  mux {mux.get('name')}: CVM {mux.get('cvmId')}, {mux.get('baseUrl')} "
            f"(channels: {', '.join(mux.get('channels') or [])})"
        )
    tenants: Mapping[str, Any] = outputs.get("tenants") or {}
    # Without --show-secrets, a secret output is the text "[secret]".
    secrets = outputs.get("tenantSecrets")
    secrets = secrets if isinstance(secrets, Mapping) else {}
    rows = [["TENANT", "STORAGE", "CVM", "SSH HOST", "DASHBOARD"]]
    for name, tenant in tenants.items():
        storage = str(tenant.get("storageMode"))
        if tenant.get("bucket"):
            storage += f" ({tenant['bucket']})"
        dashboard = (secrets.get(name) or {}).get("dashboardUrl") or (
            f"{tenant.get('gatewayUrl')}/#token={SECRET_ELIDED}"
        )
        rows.append(
            [
                name,
                storage,
                str(tenant.get("cvmId")),
                str(tenant.get("sshHost")),
                elide_token(dashboard),
            ]
        )
    if len(rows) > 1:
        lines += table(rows)
    return lines


def _call(service: str, entry: Mapping[str, Any]) -> str:
    about = entry.get("cvm") if service == "phala" else entry.get("name")
    suffix = f"  ({about})" if about else ""
    return f"{entry.get('method'):<6} {entry.get('path')} -> {entry.get('status')}{suffix}"


def calls_lines(
    title: str, service: str, entries: Sequence[Mapping[str, Any]], writes: Sequence[bool]
) -> list[str]:
    """Every write call in order, and how many reads there were between them."""
    lines = [f"{title}: {sum(writes)} writes, {len(entries) - sum(writes)} reads"]
    pending_reads = 0
    for entry, is_write in zip(entries, writes, strict=True):
        if not is_write:
            pending_reads += 1
            continue
        if pending_reads:
            lines.append(f"    ... {pending_reads} read{'s' if pending_reads > 1 else ''}")
            pending_reads = 0
        lines.append("    " + _call(service, entry))
    if pending_reads:
        lines.append(f"    ... {pending_reads} read{'s' if pending_reads > 1 else ''}")
    return lines


def _leaves(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        found: dict[str, Any] = {}
        for key, item in value.items():
            found.update(_leaves(f"{prefix}.{key}" if prefix else str(key), item))
        return found
    return {prefix: value}


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value) if value is None else str(value)
    return text if len(text) <= 24 else text[:12] + "…" + text[-8:]


def output_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Each output value that changed, was added or went away (secret outputs stay
    "[secret]" on both sides, so they never show here)."""
    old, new = _leaves("", before), _leaves("", after)
    lines = []
    for key in sorted(old.keys() | new.keys()):
        if key not in new:
            lines.append(f"  - {key}: {_shown(old[key])}")
        elif key not in old:
            lines.append(f"  + {key}: {_shown(new[key])}")
        elif old[key] != new[key]:
            lines.append(f"  ~ {key}: {_shown(old[key])} -> {_shown(new[key])}")
    return lines or ["  (no output changed)"]

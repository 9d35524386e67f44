"""Scanning text and files for secrets, in the encodings a leak would take.

A secret is looked for raw, base64-encoded (standard and URL-safe, with and without
padding) and JSON-escaped (as it would sit inside a JSON string). A hit names the
secret's label, never its value, so a failing test does not print the secret again.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Hit:
    channel: str
    label: str
    encoding: str


def encodings(value: str) -> dict[str, str]:
    raw = value.encode()
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    forms = {
        "raw": value,
        "base64": standard,
        "base64 unpadded": standard.rstrip("="),
        "base64url": urlsafe.rstrip("="),
        "json-escaped": json.dumps(value)[1:-1],
    }
    return {name: form for name, form in forms.items() if form}


def scan_text(channel: str, text: str, secrets: Mapping[str, str]) -> list[Hit]:
    hits = []
    for label, value in secrets.items():
        for encoding, form in encodings(value).items():
            if form in text:
                hits.append(Hit(channel, label, encoding))
                break
    return hits


def files_under(roots: Iterable[Path]) -> list[Path]:
    return sorted(path for root in roots for path in root.rglob("*") if path.is_file())


def scan_files(paths: Iterable[Path], secrets: Mapping[str, str], *, base: Path) -> list[Hit]:
    hits = []
    for path in paths:
        text = path.read_bytes().decode("utf-8", errors="replace")
        hits += scan_text(str(path.relative_to(base)), text, secrets)
    return hits

"""Scrubbing secret values out of everything the driver prints."""

from __future__ import annotations

import json
from collections.abc import Sequence

REDACTED = "[secret]"


class Scrubber:
    """Replaces every known secret value in text about to be printed."""

    def __init__(self, secrets: Sequence[str]) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            variants.add(secret)
            variants.add(json.dumps(secret, ensure_ascii=False)[1:-1])  # as it appears in JSON
            variants.add(json.dumps(secret)[1:-1])
            # Multi-line secrets (PEM keys) may be echoed a line at a time.
            variants.update(line for line in secret.splitlines() if len(line) >= 8)
        # Longest first, so a secret containing another is replaced whole.
        self._variants = sorted((v for v in variants if v), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for variant in self._variants:
            text = text.replace(variant, REDACTED)
        return text

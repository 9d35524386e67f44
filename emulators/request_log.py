"""An emulator's request log as JSON lines in a file, for a process that did not start the
emulator in-process (the sandbox reads it to show the calls and to prove a run wrote
nothing). Only what identifies a call is kept: never a header (so never a credential) and
never a body."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


class JsonLinesLog:
    """Appends one JSON object per line, flushed at once; safe across handler threads."""

    def __init__(self, path: Path) -> None:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file = os.fdopen(descriptor, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, sort_keys=True, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_json_lines(path: Path, start: int = 0) -> list[dict[str, Any]]:
    """The entries from line `start` on (a partly written last line is left for later)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")
    complete = lines[:-1]  # the text after the last newline is not a whole entry yet
    return [json.loads(line) for line in complete[start:] if line]

"""Round-by-round progress of a run: JSON lines written by the ServerApp, followed by the CLI.

The ServerApp runs inside the SuperLink's process tree (its output is not shown to the person
who submitted the run), so it appends one JSON object per event to ``OUT_DIR/progress.jsonl``;
``gsco-hub federation run`` reads new lines as they appear and prints them. Events: ``sites``,
``site-lost``, ``round``, ``final``, ``completed`` and ``failed`` (with the error's code and message).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

PROGRESS_FILE = "progress.jsonl"
RESULT_FILE = "result.json"


def _clean(value: Any) -> Any:
    """NaN/inf are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def dump_json(data: Any) -> str:
    return json.dumps(_clean(data), allow_nan=False, sort_keys=False)


class ProgressWriter:
    """Append events to the run's progress file (one flushed line each)."""

    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / PROGRESS_FILE

    def write(self, event: str, **fields: Any) -> None:
        line = dump_json({"event": event, "time": round(time.time(), 3), **fields})
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


class ProgressReader:
    """Return the events appended since the last call (complete lines only)."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / PROGRESS_FILE
        self._offset = 0

    def new_events(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        complete, _, _ = chunk.rpartition(b"\n")
        if not complete:
            return []
        self._offset += len(complete) + 1
        return [json.loads(line) for line in complete.decode("utf-8").splitlines() if line.strip()]

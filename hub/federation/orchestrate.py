"""Submit a federated run to the SuperLink, stream its progress and read its real final status.

The run's output folder (``GSCO_HOME/federation/runs/<run>``) receives the ServerApp's progress
events, a checkpoint per round and ``result.json``; the ServerApp runs on the hub machine beside
the SuperLink, so the folder is shared. ``flwr run`` returns once the run is submitted (and its
exit code says nothing about the run's outcome): the final word is the status from ``flwr ls``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hub.federation
from gsco_common.errors import FederationError
from hub.federation.flwr_cli import FlowerCli
from hub.federation.progress import RESULT_FILE, ProgressReader
from hub.federation.settings import RunSettings

COMPLETED = "finished:completed"
STATUS_EVERY_S = 5.0
"""How often to ask the SuperLink for the run's status until the ServerApp reports progress."""
STATUS_WHILE_REPORTING_S = 60.0
"""...and once it does: each ``flwr ls`` is a new Python process, which the sites' training and
the weight transfers would otherwise compete with every few seconds."""
POLL_S = 0.5

EventHandler = Callable[[dict[str, Any]], None]


def app_dir() -> Path:
    """The Flower app project folder shipped with the hub (its FAB is what sites approve)."""
    return Path(hub.federation.__file__).resolve().parent / "app"


def new_run_name() -> str:
    return "run-" + secrets.token_hex(4)


@dataclass(frozen=True)
class RunOutcome:
    """A finished, successful run."""

    name: str
    out_dir: Path
    flower_run_id: int
    result: dict[str, Any]


def run_federation(
    flwr: FlowerCli,
    settings: RunSettings,
    name: str,
    on_event: EventHandler,
    *,
    app: Path | None = None,
    timeout: float | None = None,
) -> RunOutcome:
    """Submit ``settings`` (whose ``out_dir`` is this run's folder) and follow it to the end.

    ``app`` is the Flower app folder to submit (default: the one shipped with the hub).

    Raises:
        FederationError: the run failed (with the ServerApp's own reason when it wrote one),
            was stopped, or did not finish within ``timeout`` seconds (it is then stopped).
    """
    out_dir = settings.output
    out_dir.mkdir(parents=True, exist_ok=True)
    run_id = flwr.submit(app or app_dir(), settings.write_run_config(out_dir / "run_config.toml"))
    on_event({"event": "submitted", "run": name, "flower_run_id": run_id})
    reader = ProgressReader(out_dir)
    terminal: dict[str, Any] | None = None
    deadline = None if timeout is None else time.monotonic() + timeout
    next_status = time.monotonic() + STATUS_EVERY_S
    reporting = False
    try:
        while True:
            for event in reader.new_events():
                on_event(event)
                reporting = True
                if event["event"] in ("completed", "failed"):
                    terminal = event
            if terminal is not None or time.monotonic() >= next_status:
                status = flwr.status(run_id)
                interval = STATUS_WHILE_REPORTING_S if reporting else STATUS_EVERY_S
                next_status = time.monotonic() + interval
                if str(status.get("status", "")).startswith("finished"):
                    break
            if deadline is not None and time.monotonic() > deadline:
                flwr.stop(run_id)
                raise FederationError(f"run {name} did not finish within {timeout:.0f} s and was stopped")
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        flwr.stop(run_id)
        raise
    for event in reader.new_events():
        on_event(event)
        if event["event"] in ("completed", "failed"):
            terminal = event
    final_status = str(status["status"])
    if final_status != COMPLETED or terminal is None or terminal["event"] != "completed":
        reason = terminal.get("message") if terminal and terminal["event"] == "failed" else None
        raise FederationError(
            f"run {name} ended as {final_status}" + (f": {reason}" if reason else ""),
            hint=(terminal or {}).get("hint") or f"see `flwr log {run_id}` with FLWR_HOME={flwr.home}",
        )
    result = json.loads((out_dir / RESULT_FILE).read_text(encoding="utf-8"))
    return RunOutcome(name=name, out_dir=out_dir, flower_run_id=run_id, result=result)

"""Following a run: the SuperLink is asked for the status rarely once the ServerApp reports.

A scripted SuperLink makes the timing exact here; the same behaviour and the run states a real
SuperLink reports are checked in test_local_federation.py::test_run_publishes_a_bundle_signed_by_the_hub.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gsco_common.errors import FederationError
from hub.federation import orchestrate
from hub.federation.progress import RESULT_FILE, ProgressWriter
from hub.federation.settings import RunSettings


class ScriptedSuperLink:
    """Answers like ``FlowerCli``; a thread plays a ServerApp that reports rounds, then ends."""

    def __init__(self, out_dir: Path, outcome: str = "completed") -> None:
        self.out_dir = out_dir
        self.outcome = outcome
        self.status_calls = 0
        self.finished = False
        self.home = out_dir / "flwr-home"

    def submit(self, app: Path, run_config: Path) -> int:
        threading.Thread(target=self._serverapp, daemon=True).start()
        return 7

    def _serverapp(self) -> None:
        progress = ProgressWriter(self.out_dir)
        progress.write("started", task="pneumonia", rounds=4, strategy="fedavg")
        for number in range(1, 5):
            time.sleep(0.15)
            progress.write("round", round=number, rounds=4)
        (self.out_dir / RESULT_FILE).write_text(json.dumps({"status": "completed"}))
        self.finished = True
        if self.outcome == "completed":
            progress.write("completed", result=RESULT_FILE)
        else:
            progress.write(
                "failed", code="GSCO-700", message="round 3: only 1 of the required 2 sites remain"
            )

    def status(self, run_id: int) -> dict[str, Any]:
        self.status_calls += 1
        if not self.finished:
            return {"status": "running"}
        return {"status": "finished:completed" if self.outcome == "completed" else "finished:failed"}

    def stop(self, run_id: int) -> None:
        raise AssertionError("a run that ends by itself is never stopped")


@pytest.fixture(autouse=True)
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orchestrate, "STATUS_EVERY_S", 0.02)
    monkeypatch.setattr(orchestrate, "POLL_S", 0.01)


def test_status_is_not_polled_while_the_serverapp_reports(tmp_path: Path) -> None:
    superlink = ScriptedSuperLink(tmp_path)
    events: list[dict[str, Any]] = []
    settings = RunSettings(task="pneumonia", out_dir=str(tmp_path))
    outcome = orchestrate.run_federation(superlink, settings, "run-x", events.append, timeout=30)  # type: ignore[arg-type]
    assert outcome.result == {"status": "completed"}
    assert [event["event"] for event in events].count("round") == 4
    # At most one look before the first report and the final one; every `flwr ls` is a new process.
    assert superlink.status_calls <= 2


def test_a_failed_run_still_fails_loudly(tmp_path: Path) -> None:
    superlink = ScriptedSuperLink(tmp_path, outcome="failed")
    settings = RunSettings(task="pneumonia", out_dir=str(tmp_path))
    with pytest.raises(FederationError, match="ended as finished:failed: round 3: only 1"):
        orchestrate.run_federation(superlink, settings, "run-x", lambda _event: None, timeout=30)  # type: ignore[arg-type]

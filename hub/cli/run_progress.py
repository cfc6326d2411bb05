"""How `gsco-hub federation run` (and the one-machine demo in ``deploy/demo``) shows a run's events."""

from __future__ import annotations

import signal
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gsco_common.cli import err_console


def sigterm_as_interrupt() -> None:
    """Treat SIGTERM like Ctrl-C, so that stopping the command still stops what it started."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class ProgressPrinter:
    """Show a run's events: a rich bar over the rounds and one line per event."""

    def __init__(self, rounds: int, quiet: bool) -> None:
        self.quiet = quiet
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
        )
        self.task = self.progress.add_task("rounds", total=rounds)

    def __enter__(self) -> ProgressPrinter:
        if not self.quiet:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        line = self._line(event)
        if event["event"] == "round":
            self.progress.update(self.task, completed=event["round"])
        if line and not self.quiet:
            self.progress.console.print(line, highlight=False, soft_wrap=True)

    def _line(self, event: dict[str, Any]) -> str | None:
        """One line for people, or None for an event that only moves the bar."""
        kind = event["event"]
        if kind == "submitted":
            return f"submitted run {event['run']} (Flower run {event['flower_run_id']})"
        if kind == "sites":
            taking_part = len(event["participating"])
            return f"{taking_part} site(s) taking part, {event['refused']} refused or unavailable"
        if kind in ("site-refused", "site-lost"):
            where = f" in round {event['round']}" if "round" in event else ""
            return f"site {event['node_fingerprint'][:19]}… left{where}: {event['reason']}"
        if kind == "round":
            previous = event["previous_global"]
            evaluation = (
                f", global model of round {event['round'] - 1}: val acc {_fmt(previous.get('accuracy'))}"
                f" bal-acc {_fmt(previous.get('balanced-accuracy'))}"
                if previous.get("examples")
                else ""
            )
            return (
                f"round {event['round']}/{event['rounds']}: {event['sites']} sites, "
                f"train loss {_fmt(event['train_loss'])}{evaluation}; {event['wall_seconds']:.1f} s "
                f"(slowest site {event['slowest_site_seconds']:.1f} s, "
                f"overhead {event['overhead_seconds']:.1f} s)"
            )
        if kind == "final":
            metrics = event["metrics"]
            return (
                f"final model on the sites' held-out data: acc {_fmt(metrics.get('accuracy'))}, "
                f"bal-acc {_fmt(metrics.get('balanced-accuracy'))}, auc {_fmt(metrics.get('auc'))}"
            )
        if kind == "failed":
            return f"run failed: {event['message']}"
        return None

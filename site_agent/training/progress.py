"""Rich progress bar for training: loss, images/s and the validation metric, one row per epoch."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from specialist.training.callbacks import Callback, EpochInfo, StepInfo


class RichProgress(Callback):
    """Shows training on ``console`` (stderr in the CLI so that ``--json`` stdout stays clean)."""

    def __init__(self, console: Console, label: str) -> None:
        self.console = console
        self.label = label
        self.progress: Progress | None = None
        self.tasks: dict[int, TaskID] = {}
        self.epochs = 0
        self.steps = 0

    def on_train_start(self, epochs: int, steps_per_epoch: int, start_epoch: int) -> None:
        self.epochs = epochs
        self.steps = steps_per_epoch
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]} img/s"),
            TextColumn("val {task.fields[val]}"),
            TimeElapsedColumn(),
            console=self.console,
            refresh_per_second=4,
        )
        self.progress.start()

    def _task(self, epoch: int) -> TaskID:
        if self.progress is None:
            raise RuntimeError("on_train_start was not called")
        if epoch not in self.tasks:
            self.tasks[epoch] = self.progress.add_task(
                f"{self.label} epoch {epoch + 1}/{self.epochs}",
                total=self.steps,
                loss="-",
                speed="-",
                val="-",
            )
        return self.tasks[epoch]

    def on_step_end(self, info: StepInfo) -> None:
        if self.progress is None:
            return
        self.progress.update(
            self._task(info.epoch),
            completed=info.step,
            loss=f"{info.loss:.4f}",
            speed=f"{info.images_per_s:.0f}",
        )

    def on_epoch_end(self, info: EpochInfo) -> None:
        if self.progress is None:
            return
        value = "n/a" if info.monitor_value is None else f"{info.monitor_value:.4f}"
        marker = " *" if info.improved else ""
        self.progress.update(
            self._task(info.epoch),
            completed=self.steps,
            loss=f"{info.train_loss:.4f}",
            speed=f"{info.images_per_s:.0f}",
            val=f"{info.monitor} {value}{marker}",
        )

    def on_train_end(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

"""Hooks into training (progress bars, tests, interruption) and graceful Ctrl-C handling."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class StepInfo:
    """Reported after every optimizer step (``step`` counts finished steps of this epoch)."""

    epoch: int
    step: int
    steps: int
    loss: float
    images_per_s: float
    lr: float


@dataclass
class EpochInfo:
    """Reported after every epoch of :func:`~site_agent.training.trainer.train_run`."""

    epoch: int
    epochs: int
    train_loss: float
    images_per_s: float
    val: dict[str, Any] | None = None
    monitor: str = ""
    monitor_value: float | None = None
    improved: bool = False


class Callback:
    """Hooks called at safe points of training (override what you need).

    Raising :class:`KeyboardInterrupt` from a hook stops training like Ctrl-C does: the trainer
    saves a checkpoint at that exact position and ``--resume`` continues from it.
    """

    def on_train_start(self, epochs: int, steps_per_epoch: int, start_epoch: int) -> None:
        """Training (or a resumed part of it) starts."""

    def on_step_end(self, info: StepInfo) -> None:
        """An optimizer step finished."""

    def on_epoch_end(self, info: EpochInfo) -> None:
        """An epoch (with its validation, when any) finished and was checkpointed."""

    def on_train_end(self) -> None:
        """Training stopped, normally or not."""


class HardInterrupt(KeyboardInterrupt):
    """A second Ctrl-C: raised wherever the loop is, so the in-memory state may be mid-step."""


class StopSignal:
    """Set by SIGINT while training: the loop stops after the current step and checkpoints."""

    def __init__(self) -> None:
        self.requested = False


@contextmanager
def graceful_interrupts(stop: StopSignal) -> Iterator[None]:
    """First Ctrl-C asks the loop to stop at the next safe point; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.requested:
            raise HardInterrupt
        stop.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

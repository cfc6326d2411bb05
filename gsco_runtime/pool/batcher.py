"""Micro-batching without a worker thread: the first waiting caller runs the batch for everyone.

A caller enqueues its input. If no batch is being collected it becomes the *leader*: it waits
until ``max_batch`` inputs are queued, until every request currently in flight has queued
(``demand()``), or until ``max_wait_s`` has passed. It then waits for the compute ``slot`` (the
runtime's thread budget) and only when it holds it takes the queue: requests that arrive while
the slot is busy join this batch instead of forming a queue of single runs. With a single request
in flight nothing waits. No thread is owned, so a specialist that leaves the pool needs no
shutdown: callers that hold it finish on its session.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

R = TypeVar("R")


@dataclass
class _Item(Generic[R]):
    value: np.ndarray
    queued: bool = True
    done: bool = False
    result: R | None = None
    error: BaseException | None = None


class MicroBatcher(Generic[R]):
    """Groups concurrent single inputs into one call of ``run_batch`` (stacked on axis 0).

    ``run_batch`` takes ``[N, ...]`` and returns one result per row (a sequence of length N); it
    is called while holding ``slot()``.
    """

    def __init__(
        self,
        run_batch: Callable[[np.ndarray], list[R]],
        *,
        max_batch: int = 16,
        max_wait_s: float = 0.002,
        demand: Callable[[], int] | None = None,
        slot: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> None:
        self._run_batch = run_batch
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max(0.0, max_wait_s)
        self._demand = demand or (lambda: self.max_batch)
        self._slot = slot or nullcontext
        self._cond = threading.Condition()
        self._queue: list[_Item[R]] = []
        self._collecting = False
        self.batches_run = 0
        self.items_run = 0

    @property
    def pending(self) -> int:
        """Inputs queued and not yet taken into a batch."""
        with self._cond:
            return len(self._queue)

    def submit(self, value: np.ndarray) -> R:
        """Run ``value`` (one row, without the batch axis) as part of a batch; return its result."""
        return self.submit_many([value])[0]

    def submit_many(self, values: Sequence[np.ndarray]) -> list[R]:
        """Run several rows of one request (e.g. test-time augmentation views); results in order.

        They are queued together, so they share a batch (up to ``max_batch``) instead of each
        waiting for the previous one's run.
        """
        items: list[_Item[R]] = [_Item(value=value) for value in values]
        with self._cond:
            self._queue.extend(items)
            self._cond.notify_all()
        for item in items:
            self._wait_done(item)
        for item in items:
            if item.error is not None:
                raise item.error
        return [item.result for item in items]  # type: ignore[misc]

    def _wait_done(self, item: _Item[R]) -> None:
        """Lead batches (while holding the slot) or wait, until ``item`` has run."""
        while True:
            if self._elect(item):
                with self._slot():
                    self._execute(self._take())
            with self._cond:
                if item.done:
                    return

    def _elect(self, item: _Item[R]) -> bool:
        """Wait until ``item`` is done (False) or its caller leads the next batch (True)."""
        with self._cond:
            while not item.done and (self._collecting or not item.queued):
                self._cond.wait()
            if item.done:
                return False
            self._collecting = True
            deadline = time.monotonic() + self.max_wait_s
            while len(self._queue) < min(self.max_batch, max(1, self._demand())):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return True

    def _take(self) -> list[_Item[R]]:
        with self._cond:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            for queued in batch:
                queued.queued = False
            self._collecting = False
            self._cond.notify_all()
            return batch

    def _execute(self, batch: list[_Item[R]]) -> None:
        try:
            results = self._run_batch(np.stack([queued.value for queued in batch]))
            error: BaseException | None = None
        except BaseException as exc:  # delivered to every caller of the batch, who re-raises it
            results, error = [], exc
        with self._cond:
            self.batches_run += 1
            self.items_run += len(batch)
            for index, queued in enumerate(batch):
                if error is None:
                    queued.result = results[index]
                else:
                    queued.error = error
                queued.done = True
            self._cond.notify_all()

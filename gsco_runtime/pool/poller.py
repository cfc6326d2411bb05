"""A background poll: call a function every few seconds on a daemon thread until stopped."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Poller:
    """Calls ``tick`` every ``interval_s`` seconds on a daemon thread named ``name``."""

    def __init__(self, tick: Callable[[], object], interval_s: float, name: str) -> None:
        self._tick = tick
        self._interval_s = interval_s
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling (idempotent); the first tick comes one interval from now."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling; waits for a tick in progress to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._tick()

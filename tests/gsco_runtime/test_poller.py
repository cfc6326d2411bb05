"""Poller: ticks on its own named daemon thread until stopped; start is idempotent; stop joins."""

from __future__ import annotations

import threading

from gsco_runtime.pool.poller import Poller


def test_ticks_until_stopped_then_never_again() -> None:
    ticks: list[str] = []
    third = threading.Event()

    def tick() -> None:
        ticks.append(threading.current_thread().name)
        if len(ticks) == 3:
            third.set()

    poller = Poller(tick, 0.0, "test-poll")
    poller.start()
    poller.start()  # idempotent: still one thread
    assert third.wait(timeout=60)
    poller.stop()
    done = len(ticks)
    assert set(ticks) == {"test-poll"}
    assert [t.name for t in threading.enumerate()].count("test-poll") == 0
    poller.stop()  # stopping twice is harmless
    assert len(ticks) == done


def test_restarts_after_a_stop() -> None:
    ticked = threading.Event()
    poller = Poller(ticked.set, 0.0, "test-poll-again")
    poller.start()
    poller.stop()
    ticked.clear()
    poller.start()
    assert ticked.wait(timeout=60)
    poller.stop()

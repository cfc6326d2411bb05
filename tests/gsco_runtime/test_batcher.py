from __future__ import annotations

import threading

import numpy as np
import pytest

from gsco_runtime.pool.batcher import MicroBatcher


def _doubler(calls: list[int]):
    def run(batch: np.ndarray) -> list[np.ndarray]:
        calls.append(batch.shape[0])
        return [row * 2 for row in batch]

    return run


def test_concurrent_requests_share_batches_and_get_their_own_results() -> None:
    calls: list[int] = []
    inflight = 8
    batcher = MicroBatcher(_doubler(calls), max_batch=8, max_wait_s=5.0, demand=lambda: inflight)
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(8)

    def worker(i: int) -> None:
        start.wait()
        results[i] = batcher.submit(np.full(3, float(i)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(results[i], np.full(3, 2.0 * i)) for i in range(8))
    assert sum(calls) == 8
    # the leader waits (up to 5 s) until all 8 in-flight requests queued: one batch of 8
    assert calls == [8]


def test_a_lone_request_runs_at_once_without_waiting_for_company() -> None:
    calls: list[int] = []
    batcher = MicroBatcher(_doubler(calls), max_batch=8, max_wait_s=3600.0, demand=lambda: 1)
    assert batcher.submit(np.ones(2)).tolist() == [2.0, 2.0]  # would hang for an hour otherwise
    assert calls == [1]


def test_the_rows_of_one_request_share_a_batch_and_come_back_in_order() -> None:
    """Test-time augmentation views of one image: one run of both, not one run after the other."""
    calls: list[int] = []
    batcher = MicroBatcher(_doubler(calls), max_batch=8, max_wait_s=3600.0, demand=lambda: 1)
    results = batcher.submit_many([np.full(2, 1.0), np.full(2, 5.0)])
    assert [row.tolist() for row in results] == [[2.0, 2.0], [10.0, 10.0]]
    assert calls == [2]
    five = batcher.submit_many([np.full(1, float(i)) for i in range(5)])
    assert [row.item() for row in five] == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert calls == [2, 5]


def test_batches_never_exceed_max_batch() -> None:
    calls: list[int] = []
    batcher = MicroBatcher(_doubler(calls), max_batch=3, max_wait_s=0.05, demand=lambda: 10)
    threads = [threading.Thread(target=batcher.submit, args=(np.ones(1),)) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(calls) == 10 and max(calls) <= 3


def test_an_error_reaches_the_caller_and_the_batcher_keeps_working() -> None:
    failures = [ValueError("session failed")]

    def flaky(batch: np.ndarray) -> list[np.ndarray]:
        if failures:
            raise failures.pop()
        return [row * 2 for row in batch]

    batcher = MicroBatcher(flaky, max_batch=4, max_wait_s=0.0)
    with pytest.raises(ValueError, match="session failed"):
        batcher.submit(np.ones(1))
    assert batcher.submit(np.ones(1)).tolist() == [2.0]


def test_requests_arriving_while_the_slot_is_busy_join_the_next_batch() -> None:
    calls: list[int] = []
    slot = threading.Lock()
    batcher = MicroBatcher(_doubler(calls), max_batch=8, max_wait_s=0.0, demand=lambda: 1, slot=lambda: slot)
    slot.acquire()  # the compute budget is busy (another specialist's batch)
    threads = [threading.Thread(target=batcher.submit, args=(np.ones(1),)) for _ in range(5)]
    for t in threads:
        t.start()
    while batcher.pending < 5:  # all five queued behind the busy slot
        threading.Event().wait(0.01)
    slot.release()
    for t in threads:
        t.join()
    assert calls == [5]  # one batch once the slot is free, not five single runs

"""The pool's count of requests inside the runtime (the micro-batchers read it as expected demand)."""

from __future__ import annotations

from gsco_runtime.pool.pool import InflightCounter


def test_counts_the_requests_inside_and_forgets_those_that_left() -> None:
    inflight = InflightCounter()
    assert inflight.value == 0
    with inflight:
        assert inflight.value == 1
        with inflight:
            assert inflight.value == 2
        assert inflight.value == 1
    assert inflight.value == 0

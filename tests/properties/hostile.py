"""Hostile-input strategies shared by the property tests: mutate a valid file, not only noise.

Each parser's test starts from a file the parser accepts and damages it the way a broken disk,
a half-finished copy or a forger would: truncation, flipped bytes, spliced garbage, huge
numbers, values of the wrong JSON type. Settings are derandomised so that CI sees the same
examples on every run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from gsco_common.errors import GscoError

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
"""Shared settings: reproducible in CI (``derandomize``), about a second or two per test."""

HUGE_INTS = st.sampled_from([-1, 0, 2**31, 2**63, 10**30, -(2**63)])
"""Sizes and counts a forger would declare."""

WRONG_JSON = st.recursive(
    st.none()
    | st.booleans()
    | HUGE_INTS
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
"""Any JSON-like value: what a wrong-typed field may hold."""


@st.composite
def mutated_bytes(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` truncated, with flipped bytes, a spliced run of garbage, or a huge number written in."""
    data = bytearray(valid)
    kind = draw(st.sampled_from(["truncate", "flip", "splice", "huge", "empty"]))
    if kind == "empty":
        return b""
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, max(len(data) - 1, 0)))])
    if kind == "flip":
        for position in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            data[position] ^= draw(st.integers(1, 255))
        return bytes(data)
    start = draw(st.integers(0, len(data)))
    if kind == "splice":
        garbage = draw(st.binary(min_size=1, max_size=32))
        cut = draw(st.integers(0, 32))
        return bytes(data[:start] + garbage + data[start + cut :])
    width = draw(st.sampled_from([2, 4, 8]))
    return bytes(data[:start] + b"\xff" * width + data[start + width :])


def only_own_errors(call: Callable[[], Any], *allowed: type[BaseException]) -> Any:
    """Run ``call``; any exception but a :class:`GscoError` or one of ``allowed`` fails the test."""
    try:
        return call()
    except (GscoError, *allowed):
        return None
    except Exception as exc:  # noqa: BLE001  (the property: nothing else may escape)
        pytest.fail(f"{type(exc).__name__} escaped the parser: {exc!r}"[:500])

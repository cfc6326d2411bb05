"""Long lists in messages: the first few, then how many more."""

from __future__ import annotations

import pytest

from gsco_common.text import first_items


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, ""), (2, "a0, a1"), (3, "a0, a1, a2"), (4, "a0, a1, a2 (+1 more)"), (7, "a0, a1, a2 (+4 more)")],
)
def test_the_first_items_then_how_many_more(count: int, expected: str) -> None:
    assert first_items([f"a{i}" for i in range(count)], 3) == expected


def test_the_separator_is_the_callers() -> None:
    assert first_items(["x", "y", "z"], 2, "; ") == "x; y (+1 more)"

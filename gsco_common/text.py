"""Short texts for messages: a long list stays one readable line."""

from __future__ import annotations

from collections.abc import Sequence


def first_items(items: Sequence[str], shown: int, separator: str = ", ") -> str:
    """The first ``shown`` items joined by ``separator``, then ``(+K more)`` for the rest."""
    head = separator.join(items[:shown])
    return head + (f" (+{len(items) - shown} more)" if len(items) > shown else "")

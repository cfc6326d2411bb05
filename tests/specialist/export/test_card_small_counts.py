"""Small cells stay suppressed on the card: no count below 10 comes back by subtraction or from a rate."""

from __future__ import annotations

import numpy as np

from registry.bundle.card import SUPPRESSED, shown_total, suppress_total
from specialist.export.card_builder import evaluation_section

LABELS = ["normal", "pneumonia"]


def _held_out(normal: int, pneumonia: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities right on all but the first image of each class."""
    labels = np.array([0] * normal + [1] * pneumonia)
    probs = np.eye(2)[labels] * 0.8 + 0.1
    for first in (0, normal):
        probs[first] = probs[first][::-1]
    return labels, probs


def test_a_class_below_ten_leaves_no_exact_total_and_no_rate_over_it() -> None:
    """7 normal and 100 pneumonia images: ``n`` 107 with pneumonia 100 gave the 7 back, and so did
    the normal sensitivity 6/7 and the pneumonia specificity (over the 7 normal images)."""
    section = evaluation_section(*_held_out(7, 100), LABELS, split="test", resamples=20)
    assert section["n"] == 100
    rates = {row["label"]: row for row in section["per_class"]}
    assert rates["normal"]["sensitivity"] == {"value": None, "ci95": None}
    assert rates["pneumonia"]["specificity"] == {"value": None, "ci95": None}
    assert rates["normal"]["specificity"]["value"] == 99 / 100  # over the 100 pneumonia images
    assert rates["pneumonia"]["sensitivity"]["value"] == 99 / 100


def test_without_a_small_class_the_card_keeps_exact_figures() -> None:
    section = evaluation_section(*_held_out(12, 100), LABELS, split="test", resamples=20)
    assert section["n"] == 112
    rates = {row["label"]: row for row in section["per_class"]}
    assert rates["normal"]["sensitivity"]["value"] == 11 / 12
    assert rates["pneumonia"]["specificity"]["value"] == 11 / 12


def test_a_total_beside_a_suppressed_cell_is_the_sum_of_the_cells_shown() -> None:
    """Rounded down (107 to 100) it would still narrow a cell where the total is round (30 beside
    24 gives 6 to 9); the sum of the shown cells says nothing the cells do not."""
    assert shown_total([7, 100]) == shown_total([0, 100]) == 100
    assert shown_total([6, 24]) == 24
    assert shown_total([12, 95]) == 107
    assert shown_total([15, 200], threshold=20) == 200
    assert suppress_total([7, 100]) == 100
    assert suppress_total([6, 8]) == SUPPRESSED

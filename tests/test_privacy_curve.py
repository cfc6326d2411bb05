"""bench/privacy_curve.py: the sentences it writes into docs/privacy.md follow the numbers."""

from __future__ import annotations

import math
from typing import Any

from bench.privacy_curve import observations, table


def row(epsilon: float, spent: float, accuracy: float, mia: float, ci: tuple[float, float], seconds: float,
        exhausted: bool = False) -> dict[str, Any]:  # fmt: skip
    return {
        "epsilon_budget": epsilon, "epsilon_spent": spent, "accuracy": accuracy, "auc": accuracy + 0.05,
        "mia": {"auc": mia, "ci95": list(ci)}, "training_seconds": seconds, "budget_exhausted": exhausted,
    }  # fmt: skip


def test_the_sentences_say_what_the_numbers_say_not_the_expected_trend() -> None:
    rows = [
        row(math.inf, math.inf, 0.90, 0.58, (0.52, 0.64), 100.0),
        row(8.0, 7.99, 0.80, 0.50, (0.44, 0.56), 400.0),
        row(1.0, 0.99, 0.70, 0.53, (0.47, 0.59), 350.0, exhausted=True),
    ]
    assert observations(rows) == [
        "- Without DP: accuracy 0.900, AUC 0.950, MIA AUC 0.580; its interval lies above 0.5 (the "
        "losses reveal membership), so the non-DP model over-fits measurably.",
        "- ε = 8: accuracy -0.100, AUC -0.100, MIA AUC -0.080 against the non-DP model; its interval "
        "contains 0.5 (no membership signal measurable); training took 4.0× the non-DP time.",
        "- ε = 1: accuracy -0.200, AUC -0.200, MIA AUC -0.050 against the non-DP model; its interval "
        "contains 0.5 (no membership signal measurable); training took 3.5× the non-DP time.",
        "- MIA AUC along the curve (0.580 → 0.500 → 0.530) falls at 1 of 2 steps as ε falls (not "
        "monotonically).",
        "- Spent ε stays within the budget in every DP run.",
        "- The budget guard stopped training early at ε = 1.",
    ]
    assert table(rows)[2] == "| inf | inf | 0.900 | 0.950 | 0.580 [0.520, 0.640] | 100 | 1.0 |"


def test_a_non_dp_model_without_membership_signal_is_not_called_over_fitted() -> None:
    rows = [row(math.inf, math.inf, 0.9, 0.52, (0.46, 0.58), 10.0), row(3.0, 3.2, 0.8, 0.5, (0.4, 0.6), 30.0)]
    lines = observations(rows)
    assert lines[0].endswith("so the non-DP model does not over-fit measurably.")
    assert lines[-1] == "- Spent ε EXCEEDS the budget at ε = 3."

"""The arbitration analysis of `gsco-hub evaluate` on answers whose outcome is known case by case."""

from __future__ import annotations

import numpy as np

from hub.evaluation.evaluate import Arbitration, arbitration


def test_each_disagreement_is_counted_once_as_right_or_wrong_and_by_what_gsco_did() -> None:
    # case:            0  1  2  3  4   5  6  7
    zero_shot = np.array([1, 1, 0, 0, 1, -1, 1, 0])  # -1: the generalist's answer was unparseable
    majority = np.array([0, 1, 1, 0, 0, 0, 0, 1])
    gsco = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    labels = np.array([1, 0, 1, 1, 0, 0, 1, 1])
    # 0: right, upheld; 1, 3: agree; 2, 4, 5: wrong, corrected; 6: right, not upheld; 7: wrong, kept
    result = arbitration(zero_shot, majority, gsco, labels)
    assert result == Arbitration(disagreements=6, right=2, right_upheld=1, wrong=4, wrong_corrected=3)
    shares = result.to_dict()
    assert shares["upheld_when_right"] == 0.5 and shares["corrected_when_wrong"] == 0.75


def test_no_disagreement_gives_zero_counts_and_no_rates() -> None:
    same = np.array([0, 1, 1])
    result = arbitration(same, same, same, np.array([1, 1, 0]))
    assert result == Arbitration(disagreements=0, right=0, right_upheld=0, wrong=0, wrong_corrected=0)
    assert result.to_dict()["upheld_when_right"] is None and result.to_dict()["corrected_when_wrong"] is None


def test_changing_a_wrong_answer_to_another_wrong_class_is_no_correction() -> None:
    # Three classes: the generalist said 0, the specialists 1, the truth is 2, GSCo chose 1.
    result = arbitration(np.array([0, 0]), np.array([1, 1]), np.array([1, 2]), np.array([2, 2]))
    assert result == Arbitration(disagreements=2, right=0, right_upheld=0, wrong=2, wrong_corrected=1)

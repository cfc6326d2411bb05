"""`gsco-hub evaluate` scores methods with the platform's one metrics implementation, as sklearn does."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from hub.evaluation.metrics import method_scores


def test_a_no_answer_counts_as_wrong_for_every_class() -> None:
    labels = np.array([0, 0, 1, 1])
    predicted = np.array([0, -1, 1, 0])
    scores = method_scores(labels, predicted, None, 2)
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 1, fp 0, fn 1 -> 2/3
    assert scores == {"accuracy": 0.5, "macro_f1": pytest.approx((0.5 + 2 / 3) / 2), "auc": None}


@pytest.mark.parametrize("num_classes", [2, 3, 4])
def test_scores_equal_sklearns(num_classes: int) -> None:
    rng = np.random.default_rng(num_classes)
    classes = list(range(num_classes))
    for _ in range(20):
        labels = rng.permutation(np.arange(40) % num_classes)
        predicted = rng.integers(-1, num_classes, 40)
        probs = rng.dirichlet(np.ones(num_classes), 40)
        scores = method_scores(labels, predicted, probs, num_classes)
        expected_auc = (
            roc_auc_score(labels, probs[:, 1])
            if num_classes == 2
            else roc_auc_score(labels, probs, multi_class="ovr", labels=classes)
        )
        assert scores["accuracy"] == pytest.approx(accuracy_score(labels, predicted), abs=1e-12)
        assert scores["macro_f1"] == pytest.approx(
            f1_score(labels, predicted, labels=classes, average="macro", zero_division=0), abs=1e-12
        )
        assert scores["auc"] == pytest.approx(expected_auc, abs=1e-9)

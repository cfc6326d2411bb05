"""Accuracy, macro-F1 and AUC for one method's predictions on a labelled set."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score


def method_scores(
    labels: np.ndarray, predicted: np.ndarray, probs: np.ndarray | None, num_classes: int
) -> dict:
    """``accuracy``, ``macro_f1`` and ``auc`` (None without probabilities or with a missing class).

    ``predicted`` may hold ``-1`` for "no answer" (an unparseable generalist reply): it counts
    as wrong for every class.
    """
    classes = list(range(num_classes))
    result: dict[str, float | None] = {
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, labels=classes, average="macro", zero_division=0)),
        "auc": None,
    }
    if probs is not None and len(np.unique(labels)) == num_classes:
        if num_classes == 2:
            result["auc"] = float(roc_auc_score(labels, probs[:, 1]))
        else:
            result["auc"] = float(roc_auc_score(labels, probs, multi_class="ovr", labels=classes))
    return result

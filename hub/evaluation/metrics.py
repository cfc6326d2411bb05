"""Accuracy, macro-F1 and AUC for one method's predictions on a labelled set.

The numbers come from :mod:`specialist.metrics`, the platform's one metrics implementation, so
``gsco-hub evaluate`` and a site's card score a model the same way.
"""

from __future__ import annotations

import numpy as np

from specialist.metrics import accuracy_of, auc, macro_f1_of


def method_scores(
    labels: np.ndarray, predicted: np.ndarray, probs: np.ndarray | None, num_classes: int
) -> dict:
    """``accuracy``, ``macro_f1`` and ``auc`` (None without probabilities or with a missing class).

    ``predicted`` may hold ``-1`` for "no answer" (an unparseable generalist reply): it counts
    as wrong for every class.
    """
    result: dict[str, float | None] = {
        "accuracy": accuracy_of(labels, predicted),
        "macro_f1": macro_f1_of(labels, predicted, num_classes),
        "auc": None,
    }
    if probs is not None and len(np.unique(labels)) == num_classes:
        result["auc"] = auc(labels, probs)
    return result

"""Classification metrics for a specialist: the numbers shown by ``evaluate`` and put on the card.

All functions take integer labels ``[N]`` and class probabilities ``[N, C]``. Predictions are the
arg-max class. Undefined values (an AUC without both classes present) are ``None``, never NaN, so
that ``metrics.json`` stays valid JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gsco_common.errors import DataError

ECE_BINS = 15

MetricFn = Callable[[np.ndarray, np.ndarray], float | None]


def _check(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0] or probs.shape[1] < 2:
        raise DataError(f"expected probabilities [N, C>=2] for {labels.shape[0]} labels, got {probs.shape}")
    if labels.size == 0:
        raise DataError("cannot compute metrics on an empty split")
    if labels.min() < 0 or labels.max() >= probs.shape[1]:
        raise DataError("labels must be class indices below the number of classes")
    return labels, probs


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]``."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, preds), 1)
    return matrix


def accuracy_of(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Share of correct answers; a ``-1`` ("no answer", e.g. an unparseable reply) is wrong."""
    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


def macro_f1_of(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """Unweighted mean F1 over all classes; a class never predicted nor present scores 0.

    A ``-1`` in ``predicted`` ("no answer") is a miss for its true class and no class's hit.
    """
    labels, predicted = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    answered = predicted >= 0
    matrix = confusion_matrix(labels[answered], predicted[answered], num_classes)
    misses = np.bincount(labels[~answered], minlength=num_classes)
    tp = np.diag(matrix).astype(np.float64)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1) + misses
    f1 = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
    return float(f1.mean())


def nll_per_example(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Negative log-likelihood of each example's true label (probabilities clipped at 1e-12)."""
    picked = probs[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)]
    return -np.log(np.clip(picked, 1e-12, 1.0))


def accuracy(labels: np.ndarray, probs: np.ndarray) -> float:
    labels, probs = _check(labels, probs)
    return accuracy_of(labels, probs.argmax(axis=1))


def _sensitivities(matrix: np.ndarray) -> np.ndarray:
    support = matrix.sum(axis=1)
    return np.where(support > 0, np.diag(matrix) / np.maximum(support, 1), np.nan)


def _specificities(matrix: np.ndarray) -> np.ndarray:
    total = matrix.sum()
    negatives = total - matrix.sum(axis=1)
    false_positives = matrix.sum(axis=0) - np.diag(matrix)
    true_negatives = negatives - false_positives
    return np.where(negatives > 0, true_negatives / np.maximum(negatives, 1), np.nan)


def balanced_accuracy_of(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Mean sensitivity over the classes present in ``labels`` (sklearn's definition).

    A ``-1`` in ``predicted`` ("no answer") is a miss for its true class.
    """
    labels, predicted = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    if labels.size == 0:
        raise DataError("cannot compute metrics on an empty split")
    return float(np.mean([np.mean(predicted[labels == c] == c) for c in np.unique(labels)]))


def balanced_accuracy(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean sensitivity over the classes present in ``labels`` (sklearn's definition)."""
    labels, probs = _check(labels, probs)
    return balanced_accuracy_of(labels, probs.argmax(axis=1))


def macro_f1(labels: np.ndarray, probs: np.ndarray) -> float:
    """Unweighted mean F1 over all classes; a class never predicted nor present scores 0."""
    labels, probs = _check(labels, probs)
    return macro_f1_of(labels, probs.argmax(axis=1), probs.shape[1])


def roc_points(positives: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve ``(fpr, tpr, thresholds)``; a case is called positive when ``score >= threshold``.

    Starts at ``(0, 0)`` with threshold ``inf``; one point per distinct score, highest first.
    """
    positives = np.asarray(positives, dtype=bool).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="mergesort")
    ranked_scores, ranked = scores[order], positives[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(ranked_scores)), ranked.size - 1]
    true_positives = np.cumsum(ranked)[last_of_run]
    false_positives = last_of_run + 1 - true_positives
    tpr = np.r_[0.0, true_positives / max(int(positives.sum()), 1)]
    fpr = np.r_[0.0, false_positives / max(int((~positives).sum()), 1)]
    return fpr, tpr, np.r_[np.inf, ranked_scores[last_of_run]]


def midranks(values: np.ndarray) -> np.ndarray:
    """Ranks ``1..n`` of ``values``, tied values sharing their mean rank."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts
    return (first_rank + (counts + 1) / 2.0)[inverse]


def binary_auc(positives: np.ndarray, scores: np.ndarray) -> float | None:
    """Mann-Whitney estimate of the ROC AUC (ties count one half); ``None`` without both classes."""
    positives = np.asarray(positives, dtype=bool).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = midranks(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _class_aucs(labels: np.ndarray, probs: np.ndarray) -> list[float | None]:
    return [binary_auc(labels == cls, probs[:, cls]) for cls in range(probs.shape[1])]


def auc(labels: np.ndarray, probs: np.ndarray) -> float | None:
    """ROC AUC: of the positive class (index 1) for binary tasks, else the macro one-vs-rest mean."""
    labels, probs = _check(labels, probs)
    aucs = _class_aucs(labels, probs)
    if probs.shape[1] == 2:
        return aucs[1]
    defined = [value for value in aucs if value is not None]
    return float(np.mean(defined)) if defined else None


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE over ``bins`` equal-width confidence bins: sum of |accuracy - confidence| weighted by bin size."""
    labels, probs = _check(labels, probs)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


@dataclass(frozen=True)
class OperatingPoint:
    """A decision threshold on the positive-class probability and what it achieves."""

    threshold: float
    sensitivity: float
    specificity: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def youden_threshold(labels: np.ndarray, positive_scores: np.ndarray) -> OperatingPoint | None:
    """Threshold maximising Youden's J (sensitivity + specificity - 1); ``None`` without both classes.

    Predict positive when ``score >= threshold``. Meant to be chosen on validation data.
    """
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    scores = np.asarray(positive_scores, dtype=np.float64).reshape(-1)
    if labels.min() == labels.max():
        return None
    fpr, tpr, thresholds = roc_points(labels == 1, scores)
    best = int(np.argmax(tpr - fpr))
    threshold = float(min(thresholds[best], 1.0))
    return OperatingPoint(threshold=threshold, sensitivity=float(tpr[best]), specificity=float(1 - fpr[best]))


SCALAR_METRICS: dict[str, MetricFn] = {
    "accuracy": accuracy,
    "balanced_accuracy": balanced_accuracy,
    "macro_f1": macro_f1,
    "auc": auc,
    "ece": expected_calibration_error,
}


def _nan_to_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def compute_metrics(labels: np.ndarray, probs: np.ndarray, label_names: Sequence[str]) -> dict[str, Any]:
    """Every metric of the platform in one JSON-ready dict.

    Keys: ``n``, ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``auc``, ``ece``,
    ``per_class`` (``{label: {support, sensitivity, specificity, auc}}``), ``confusion_matrix``
    (rows = true label, columns = prediction), ``label_names`` and, for binary tasks,
    ``operating_point`` (Youden J on these labels).
    """
    labels, probs = _check(labels, probs)
    if len(label_names) != probs.shape[1]:
        raise DataError(f"{len(label_names)} label names for {probs.shape[1]} model outputs")
    matrix = confusion_matrix(labels, probs.argmax(axis=1), probs.shape[1])
    sensitivities = _sensitivities(matrix)
    specificities = _specificities(matrix)
    class_aucs = _class_aucs(labels, probs)
    result: dict[str, Any] = {
        "n": int(labels.size),
        "accuracy": accuracy(labels, probs),
        "balanced_accuracy": balanced_accuracy(labels, probs),
        "macro_f1": macro_f1(labels, probs),
        "auc": auc(labels, probs),
        "ece": expected_calibration_error(labels, probs),
        "per_class": {
            name: {
                "support": int(matrix[index].sum()),
                "sensitivity": _nan_to_none(sensitivities[index]),
                "specificity": _nan_to_none(specificities[index]),
                "auc": class_aucs[index],
            }
            for index, name in enumerate(label_names)
        },
        "confusion_matrix": matrix.tolist(),
        "label_names": list(label_names),
    }
    if probs.shape[1] == 2:
        point = youden_threshold(labels, probs[:, 1])
        result["operating_point"] = point.to_dict() if point else None
    return result


def bootstrap_ci(
    labels: np.ndarray,
    probs: np.ndarray,
    metric: str | MetricFn,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap confidence interval of one metric (resampling cases with replacement).

    ``metric`` is a name of :data:`SCALAR_METRICS` or a function ``(labels, probs) -> float``.
    Resamples where the metric is undefined (e.g. AUC with one class) are skipped; ``None`` when
    fewer than half of them are usable.
    """
    labels, probs = _check(labels, probs)
    if isinstance(metric, str):
        if metric not in SCALAR_METRICS:
            raise DataError(f"unknown metric {metric!r}", hint=f"one of {sorted(SCALAR_METRICS)}")
        metric = SCALAR_METRICS[metric]
    if n < 1 or not 0.0 < level < 1.0:
        raise DataError("bootstrap needs n >= 1 and 0 < level < 1")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        index = rng.integers(0, labels.size, labels.size)
        value = metric(labels[index], probs[index])
        if value is not None and not np.isnan(value):
            values.append(value)
    if len(values) < n / 2:
        return None
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)

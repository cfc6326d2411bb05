"""Metrics against hand-computed cases and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    roc_auc_score,
    roc_curve,
)

from gsco_common.errors import DataError
from specialist.metrics import (
    binary_auc,
    bootstrap_ci,
    compute_metrics,
    expected_calibration_error,
    roc_points,
    youden_threshold,
)


def _probs_from_predictions(preds: list[int], num_classes: int, confidence: float = 0.8) -> np.ndarray:
    rest = (1 - confidence) / (num_classes - 1)
    probs = np.full((len(preds), num_classes), rest)
    probs[np.arange(len(preds)), preds] = confidence
    return probs


def test_binary_metrics_by_hand() -> None:
    # 4 normal (0), 2 pneumonia (1); predictions: normal 3/4 right, pneumonia 1/2 right.
    labels = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.4])
    probs = np.stack([1 - scores, scores], axis=1)
    metrics = compute_metrics(labels, probs, ["normal", "pneumonia"])
    assert metrics["n"] == 6
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    # F1(normal) = 2*3/(2*3+1+1) = 0.75, F1(pneumonia) = 2*1/(2*1+1+1) = 0.5
    assert metrics["macro_f1"] == pytest.approx((0.75 + 0.5) / 2)
    # positive pairs ranked correctly: 0.7 beats all 4 negatives, 0.4 beats 3 -> 7/8
    assert metrics["auc"] == pytest.approx(7 / 8)
    assert metrics["confusion_matrix"] == [[3, 1], [1, 1]]
    assert metrics["per_class"]["pneumonia"] == {
        "support": 2,
        "sensitivity": pytest.approx(0.5),
        "specificity": pytest.approx(0.75),
        "auc": pytest.approx(7 / 8),
    }
    assert metrics["per_class"]["normal"]["sensitivity"] == pytest.approx(0.75)
    assert metrics["per_class"]["normal"]["specificity"] == pytest.approx(0.5)
    # Youden: threshold 0.4 gives sensitivity 1, specificity 3/4
    assert metrics["operating_point"] == {
        "threshold": pytest.approx(0.4),
        "sensitivity": pytest.approx(1.0),
        "specificity": pytest.approx(0.75),
    }


def test_ece_by_hand() -> None:
    # two cases at confidence 0.9 (one right) and two at 0.6 (both right):
    # |0.5 - 0.9| * 2/4 + |1.0 - 0.6| * 2/4 = 0.4
    labels = np.array([0, 1, 0, 1])
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    assert expected_calibration_error(labels, probs) == pytest.approx(0.4)
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(np.array([0, 1]), perfect) == pytest.approx(0.0)


@pytest.mark.parametrize("num_classes", [2, 3, 5])
def test_metrics_match_sklearn(num_classes: int) -> None:
    rng = np.random.default_rng(num_classes)
    labels = rng.integers(0, num_classes, 200)
    logits = rng.normal(size=(200, num_classes)) + 1.5 * np.eye(num_classes)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    preds = probs.argmax(axis=1)
    names = [f"c{i}" for i in range(num_classes)]
    metrics = compute_metrics(labels, probs, names)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(labels, preds))
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, preds))
    assert metrics["macro_f1"] == pytest.approx(f1_score(labels, preds, average="macro"))
    assert metrics["confusion_matrix"] == confusion_matrix(labels, preds).tolist()
    if num_classes == 2:
        assert metrics["auc"] == pytest.approx(roc_auc_score(labels, probs[:, 1]))
    else:
        assert metrics["auc"] == pytest.approx(
            roc_auc_score(labels, probs, multi_class="ovr", average="macro")
        )
    for index, name in enumerate(names):
        recall = (preds[labels == index] == index).mean()
        specificity = (preds[labels != index] != index).mean()
        assert metrics["per_class"][name]["sensitivity"] == pytest.approx(recall)
        assert metrics["per_class"][name]["specificity"] == pytest.approx(specificity)


def test_auc_and_roc_with_ties_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) * 0.6 + 0.3 * labels, 1)  # many ties
    assert binary_auc(labels == 1, scores) == pytest.approx(roc_auc_score(labels, scores))
    fpr, tpr, thresholds = roc_points(labels == 1, scores)
    ref_fpr, ref_tpr, ref_thresholds = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    np.testing.assert_allclose(thresholds[1:], ref_thresholds[1:])
    point = youden_threshold(labels, scores)
    best = int(np.argmax(ref_tpr - ref_fpr))
    assert point is not None and point.threshold == pytest.approx(ref_thresholds[best])


def test_undefined_values_are_none_not_nan() -> None:
    labels = np.array([0, 0, 0])
    probs = _probs_from_predictions([0, 1, 0], 3)
    metrics = compute_metrics(labels, probs, ["a", "b", "c"])
    assert metrics["auc"] is None
    assert metrics["per_class"]["b"]["sensitivity"] is None
    assert metrics["per_class"]["a"]["specificity"] is None
    assert "operating_point" not in metrics
    binary = compute_metrics(np.array([1, 1]), np.array([[0.2, 0.8], [0.6, 0.4]]), ["n", "p"])
    assert binary["auc"] is None and binary["operating_point"] is None


def test_bootstrap_ci_brackets_the_estimate_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 150)
    scores = np.clip(0.35 * labels + rng.random(150) * 0.65, 0, 1)
    probs = np.stack([1 - scores, scores], axis=1)
    estimate = compute_metrics(labels, probs, ["n", "p"])["auc"]
    low, high = bootstrap_ci(labels, probs, "auc", n=300, seed=1)
    assert low < estimate < high
    assert high - low < 0.3
    assert bootstrap_ci(labels, probs, "auc", n=300, seed=1) == (low, high)
    assert bootstrap_ci(labels, probs, "auc", n=300, seed=2) != (low, high)
    custom = bootstrap_ci(labels, probs, lambda y, p: float((p.argmax(1) == y).mean()), n=200, seed=0)
    assert custom == bootstrap_ci(labels, probs, "accuracy", n=200, seed=0)


def test_bootstrap_ci_undefined_and_unknown_metric() -> None:
    labels = np.array([1, 1, 1, 1])
    probs = np.array([[0.2, 0.8]] * 4)
    assert bootstrap_ci(labels, probs, "auc", n=50, seed=0) is None
    with pytest.raises(DataError, match="unknown metric"):
        bootstrap_ci(labels, probs, "sensitivity_at_home", n=10)


def test_bad_inputs_raise_data_error() -> None:
    with pytest.raises(DataError):
        compute_metrics(np.array([0, 1]), np.array([0.2, 0.8]), ["a", "b"])
    with pytest.raises(DataError, match="label names"):
        compute_metrics(np.array([0, 1]), np.array([[0.2, 0.8], [0.5, 0.5]]), ["a", "b", "c"])
    with pytest.raises(DataError, match="empty"):
        compute_metrics(np.array([], dtype=int), np.zeros((0, 2)), ["a", "b"])
    with pytest.raises(DataError, match="class indices"):
        compute_metrics(np.array([0, 2]), np.array([[0.2, 0.8], [0.5, 0.5]]), ["a", "b"])

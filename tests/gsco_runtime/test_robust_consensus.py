"""The consensus under class-balance shift: never below the vote, where the old fit was.

Synthetic specialists with known behaviour (numpy only): a good one; an over-fitted one that is
perfect on the calibration rows (it trained on them) but noisy elsewhere; a biased one that
always says the minority class. Calibration has 70/30 classes; evaluation resamples 50/50 and
70/30 subsets of fresh rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from gsco_runtime.arbiters.robust import (
    SHRUNK,
    looks_trained_on,
    robust_model,
    shrink,
    significant_gain,
)
from gsco_runtime.arbiters.weights import ConsensusModel, card_model, fit_model, tune_bias

CAL_SHARE = 0.3  # share of class 1 in the calibration rows


def _probs(logit: np.ndarray) -> np.ndarray:
    p1 = 1 / (1 + np.exp(-logit))
    return np.stack([1 - p1, p1], axis=1)


def _specialists(labels: np.ndarray, rng: np.random.Generator, *, memorised: bool) -> np.ndarray:
    """``[3, N, 2]``: good, over-fitted (perfect where ``memorised``), always-minority."""
    sign = np.where(labels == 1, 1.0, -1.0)
    n = labels.shape[0]
    good = 2.0 * sign + rng.normal(0, 1.5, n)
    overfitted = 5.0 * sign if memorised else 3.0 * (0.4 * sign + rng.normal(0, 1.5, n))
    biased = np.full(n, 1.5)
    return np.stack([_probs(good), _probs(overfitted), _probs(biased)])


def _labels(n: int, share: float, rng: np.random.Generator) -> np.ndarray:
    return (rng.random(n) < share).astype(int)


def _balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean([np.mean(predicted[labels == c] == c) for c in (0, 1)]))


def _majority(probs: np.ndarray) -> np.ndarray:
    return (probs.argmax(axis=2).sum(axis=0) >= 2).astype(int)


@pytest.fixture(scope="module")
def setting() -> tuple[ConsensusModel, ConsensusModel, ConsensusModel, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    held_out = _labels(4000, 0.5, rng)
    validation = _specialists(held_out, rng, memorised=False)
    skills = [_balanced_accuracy(held_out, p.argmax(axis=1)) for p in validation]
    card = card_model([{"balanced_accuracy": s} for s in skills], 2, with_retrieval=False)
    ceilings = [(name, s + 0.05) for name, s in zip(("good", "overfitted", "biased"), skills, strict=True)]
    cal_labels = _labels(600, CAL_SHARE, rng)
    cal = _specialists(cal_labels, rng, memorised=True)
    new = robust_model(cal, None, cal_labels, card, ceilings)
    old = tune_bias(fit_model(cal, None, cal_labels), cal, None, cal_labels)
    eval_labels = _labels(20000, 0.5, rng)
    return new, old, card, eval_labels, _specialists(eval_labels, rng, memorised=False)


def _subsets(labels: np.ndarray, share: float, count: int = 5, size: int = 400) -> list[np.ndarray]:
    rng = np.random.default_rng(int(share * 100))
    ones, zeros = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    positives = round(size * share)
    return [
        np.concatenate([rng.choice(ones, positives, replace=False), rng.choice(zeros, size - positives)])
        for _ in range(count)
    ]


@pytest.mark.parametrize("share", [0.5, CAL_SHARE], ids=["balanced", "calibration-balance"])
def test_the_arbiter_never_loses_to_the_vote_and_the_old_fit_does(setting, share: float) -> None:
    new, old, card, labels, probs = setting
    assert new.source == "card (library looks like training data of overfitted)"
    old_losses = 0
    for rows in _subsets(labels, share):
        y, p = labels[rows], probs[:, rows]
        ours = _balanced_accuracy(y, new.predict_proba(p, None).argmax(axis=1))
        majority = _balanced_accuracy(y, _majority(p))
        weighted = _balanced_accuracy(y, card.predict_proba(p, None).argmax(axis=1))
        before = _balanced_accuracy(y, old.predict_proba(p, None).argmax(axis=1))
        print(f"share {share}: ours {ours:.3f} majority {majority:.3f} card {weighted:.3f} old {before:.3f}")
        assert ours >= majority and ours >= weighted
        old_losses += before < majority
    assert old_losses == 5  # the unshrunk fit + tune_bias follows the over-fitted specialist


def test_a_clean_library_is_fitted_shrunk_and_keeps_the_specialists_thresholds() -> None:
    rng = np.random.default_rng(3)
    cal_labels = _labels(600, CAL_SHARE, rng)
    cal = _specialists(cal_labels, rng, memorised=False)
    card = card_model([{"balanced_accuracy": v} for v in (0.85, 0.6, 0.5)], 2, with_retrieval=False)
    model = robust_model(cal, None, cal_labels, card, [("a", 0.9), ("b", 0.7), ("c", None)])
    assert model.source == SHRUNK and not model.bias.any()
    eval_labels = _labels(4000, 0.5, rng)
    probs = _specialists(eval_labels, rng, memorised=False)
    ours = _balanced_accuracy(eval_labels, model.predict_proba(probs, None).argmax(axis=1))
    assert ours >= _balanced_accuracy(eval_labels, _majority(probs))


def test_shrinkage_is_a_convex_combination_by_calibration_size() -> None:
    fitted = ConsensusModel(np.array([3.0, 1.0]), np.array([0.0, 0.0]), np.array([0.4, -0.4]), "calibrated")
    card = ConsensusModel(np.array([0.5, 0.5]), np.array([0.5, 0.5]), np.zeros(2), "card")
    shrunk = shrink(fitted, card, cases=200)  # lam = 200 / (200 + 200) = 0.5; fitted rescaled to sum 2
    np.testing.assert_allclose(shrunk.specialist_weights, [0.5 * 1.5 + 0.25, 0.5 * 0.5 + 0.25])
    np.testing.assert_allclose(shrunk.retrieval_weights, [0.25, 0.25])
    assert not shrunk.bias.any() and shrunk.source == SHRUNK
    np.testing.assert_allclose(shrink(fitted, card, cases=0).specialist_weights, [0.5, 0.5])


def test_bootstrap_judgements_have_known_answers() -> None:
    labels = np.array([0, 1] * 100)
    right = labels.copy()
    half = np.where(np.arange(200) % 4 < 2, labels, 1 - labels)  # balanced accuracy 0.5
    assert significant_gain(labels, half, right, 2)
    assert not significant_gain(labels, right, half, 2)
    assert not significant_gain(labels, half, half, 2)
    assert looks_trained_on(labels, right, 2, ceiling=0.9)
    assert not looks_trained_on(labels, half, 2, ceiling=0.6)


def _leaning(labels: np.ndarray, rng: np.random.Generator, signal: float, lean: float) -> np.ndarray:
    """``[3, N, 2]``: a good specialist, a weaker one, and one that says class 1 ``lean`` logits too often."""
    sign = np.where(labels == 1, 1.0, -1.0)
    n = labels.shape[0]
    logits = [
        2.0 * sign + rng.normal(0, 1.5, n),
        1.0 * sign + rng.normal(0, 1.5, n),
        signal * sign + lean + rng.normal(0, 1.0, n),
    ]
    return np.stack([_probs(logit) for logit in logits])


@pytest.mark.parametrize(("signal", "lean", "moved"), [(0.3, 2.0, False), (1.0, 3.0, True)])
def test_weights_for_the_served_thresholds_do_not_lean_with_a_specialist(
    signal: float, lean: float, moved: bool
) -> None:
    rng = np.random.default_rng(1)
    cal_labels = (rng.random(600) < 0.7).astype(int)
    cal = _leaning(cal_labels, rng, signal, lean)
    card = card_model([{"balanced_accuracy": v} for v in (0.85, 0.7, 0.6)], 2, with_retrieval=False)
    ceilings = [("a", None), ("b", None), ("c", None)]
    now = robust_model(cal, None, cal_labels, card, ceilings)
    served = robust_model(cal, None, cal_labels, card, ceilings, weights_for_served_thresholds=True)
    if moved:
        # moving the thresholds is a significant gain either way: the same tuned model is served
        assert served.source == now.source == "calibrated (shrunk, thresholds moved)"
        np.testing.assert_array_equal(served.specialist_weights, now.specialist_weights)
        np.testing.assert_array_equal(served.bias, now.bias)
        return
    # kept at zero biases: the weights are the held fit's, and the leaning one counts half as much
    assert served.source == now.source == SHRUNK and not served.bias.any()
    held = shrink(fit_model(cal, None, cal_labels, fit_bias=False), card, 600)
    np.testing.assert_array_equal(served.specialist_weights, held.specialist_weights)
    assert served.specialist_weights[2] < 0.5 * now.specialist_weights[2]
    eval_labels = (rng.random(4000) < 0.5).astype(int)
    probs = _leaning(eval_labels, rng, signal, lean)
    ours = _balanced_accuracy(eval_labels, served.predict_proba(probs, None).argmax(axis=1))
    before = _balanced_accuracy(eval_labels, now.predict_proba(probs, None).argmax(axis=1))
    assert ours > before


def test_the_threshold_test_is_against_the_pool_actually_kept() -> None:
    # a lean the moved thresholds would cancel: against the joint fit's weights at zero biases
    # moving them is a significant gain; against the weights fitted for zero biases it is not
    rng = np.random.default_rng(1)
    cal_labels = (rng.random(600) < 0.7).astype(int)
    cal = _leaning(cal_labels, rng, 0.5, 3.0)
    card = card_model([{"balanced_accuracy": v} for v in (0.85, 0.7, 0.6)], 2, with_retrieval=False)
    ceilings = [("a", None), ("b", None), ("c", None)]
    now = robust_model(cal, None, cal_labels, card, ceilings)
    served = robust_model(cal, None, cal_labels, card, ceilings, weights_for_served_thresholds=True)
    assert now.source == "calibrated (shrunk, thresholds moved)" and now.bias.any()
    assert served.source == SHRUNK and not served.bias.any()

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from gsco_runtime.arbiters.weights import (
    ConsensusModel,
    card_model,
    fit_model,
    macro_f1,
    neighbour_distribution,
    tune_bias,
)


def _scenario(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three specialists (strong, medium, weak and overconfident) plus informative retrieval."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.7).astype(int)
    sign = np.where(labels == 1, 1.0, -1.0)

    def probs(signal: float, noise: float, scale: float = 1.0) -> np.ndarray:
        logit = scale * (signal * sign + rng.normal(0, noise, n))
        p1 = 1 / (1 + np.exp(-logit))
        return np.stack([1 - p1, p1], axis=1)

    specialists = np.stack([probs(2.0, 1.5), probs(1.0, 1.5), probs(0.15, 1.5, scale=6.0)])
    neighbour_labels = np.where(rng.random((n, 10)) < 0.8, labels[:, None], 1 - labels[:, None])
    dist = neighbour_distribution(neighbour_labels, np.full((n, 10), 0.9), 2)
    retrieval = np.stack([dist, dist, dist])
    return specialists, retrieval, labels


def test_calibrated_consensus_beats_the_best_single_specialist() -> None:
    calib = _scenario(800, seed=1)
    test_probs, test_dist, test_labels = _scenario(800, seed=2)
    model = fit_model(*calib)
    assert model.source == "calibrated"
    assert model.specialist_weights[0] > model.specialist_weights[2]  # the weak one is down-weighted
    assert (model.specialist_weights >= 0).all() and (model.retrieval_weights >= 0).all()

    consensus = model.predict_proba(test_probs, test_dist).argmax(axis=1)
    singles = [f1_score(test_labels, p.argmax(axis=1), average="macro") for p in test_probs]
    plain_mean = f1_score(test_labels, test_probs.mean(axis=0).argmax(axis=1), average="macro")
    ours = f1_score(test_labels, consensus, average="macro")
    print(f"singles {np.round(singles, 3)}, plain mean {plain_mean:.3f}, consensus {ours:.3f}")
    assert ours >= max(singles)
    assert ours >= plain_mean


def test_card_weights_follow_validation_skill() -> None:
    model = card_model(
        [{"balanced_accuracy": 0.9}, {"balanced_accuracy": 0.6}, {"macro_f1": 0.5}], 2, with_retrieval=False
    )
    weights = model.specialist_weights
    assert weights[0] > weights[1] > weights[2] > 0
    assert np.isclose(weights.sum(), 1.0)
    assert not model.retrieval_weights.any()
    assert card_model([{}], 2, with_retrieval=True).retrieval_weights[0] > 0


def test_neighbour_distribution_is_similarity_weighted() -> None:
    labels = np.array([[0, 1, 1, -1]])
    sims = np.array([[0.9, 0.1, -0.5, 0.99]])  # negative similarity and missing rows count zero
    dist = neighbour_distribution(labels, sims, 2)[0]
    assert np.isclose(dist.sum(), 1.0)
    assert dist[0] > 0.6 and dist[1] > 0


def test_bias_tuning_moves_the_threshold_to_the_macro_f1_optimum() -> None:
    probs, dist, labels = _scenario(800, seed=3)
    fitted = fit_model(probs, dist, labels)
    shifted = ConsensusModel(
        fitted.specialist_weights, fitted.retrieval_weights, np.array([0.0, 12.0]), "calibrated"
    )
    tuned = tune_bias(shifted, probs, dist, labels)
    before = macro_f1(labels, shifted.predict_proba(probs, dist).argmax(axis=1), 2)
    after = macro_f1(labels, tuned.predict_proba(probs, dist).argmax(axis=1), 2)
    assert after > before + 0.05
    assert after >= macro_f1(labels, fitted.predict_proba(probs, dist).argmax(axis=1), 2)
    assert np.isclose(macro_f1(labels, labels, 2), 1.0)
    assert np.isclose(macro_f1(labels, 1 - labels, 2), f1_score(labels, 1 - labels, average="macro"))


def test_weights_fitted_at_zero_biases_do_not_follow_a_leaning_specialist() -> None:
    """Specialist 1 is informative but leans 4 logits toward class 1 (it says class 1 almost always).

    Fitted together with the biases, it gets the most weight and a bias cancels its lean; with the
    biases reset to zero (the specialists' own thresholds), that pool leans with it. Fitted with the
    biases held at zero, the weights are the ones for that threshold.
    """
    rng = np.random.default_rng(1)

    def scenario(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = (rng.random(n) < 0.7).astype(int)
        sign = np.where(labels == 1, 1.0, -1.0)
        logits = [1.0 * sign + rng.normal(0, 1.0, n), 2.0 * sign + 4.0 + rng.normal(0, 1.0, n)]
        p1 = [1 / (1 + np.exp(-logit)) for logit in logits]
        return np.stack([np.stack([1 - p, p], axis=1) for p in p1]), labels

    def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
        return float(np.mean([np.mean(predicted[labels == c] == c) for c in (0, 1)]))

    (cal_probs, cal_labels), (probs, labels) = scenario(2000), scenario(2000)
    joint = fit_model(cal_probs, None, cal_labels)
    held = fit_model(cal_probs, None, cal_labels, fit_bias=False)
    assert not held.bias.any() and joint.bias[1] < -3.0  # the joint fit cancels the lean
    assert held.specialist_weights[1] < 0.2 * joint.specialist_weights[1]
    reset = ConsensusModel(joint.specialist_weights, joint.retrieval_weights, np.zeros(2), "calibrated")
    best_single = max(balanced_accuracy(labels, p.argmax(axis=1)) for p in probs)
    assert balanced_accuracy(labels, reset.predict_proba(probs, None).argmax(axis=1)) < 0.6
    assert balanced_accuracy(labels, held.predict_proba(probs, None).argmax(axis=1)) > best_single

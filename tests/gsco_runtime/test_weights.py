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

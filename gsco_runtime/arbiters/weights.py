"""The consensus model: a weighted log-linear pool of specialists and retrieved neighbours.

``score[c] = sum_i a_i * log p_i[c] + sum_i b_i * log r_i[c] + bias[c]`` where ``p_i`` is
specialist ``i``'s probability and ``r_i`` the similarity-weighted label distribution of the
cases it retrieved. A plain mean of probabilities lets one weak specialist drag the vote down
and ignores retrieval, which on real data can beat every classifier; here each source gets a
non-negative weight: fitted on a calibration set (the case library, leave-one-out) when there is
one, otherwise taken from the validation performance on each specialist's card.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

EPS = 1e-6
SMOOTHING = 0.5


@dataclass(frozen=True)
class ConsensusModel:
    """Weights per specialist (``a``) and per specialist's retrieval (``b``), plus class biases."""

    specialist_weights: np.ndarray
    retrieval_weights: np.ndarray
    bias: np.ndarray
    source: str

    def scores(
        self, probs: np.ndarray, neighbour_dist: np.ndarray | None, competence: np.ndarray | None = None
    ) -> np.ndarray:
        """Pooled log-scores ``[N, C]`` (without the class biases) from ``[S, N, C]`` inputs.

        ``competence`` ``[S, N]`` scales each specialist's weight per query
        (:mod:`~gsco_runtime.arbiters.retrieved`); None leaves the weights as they are.
        """
        weights = np.broadcast_to(self.specialist_weights[:, None], probs.shape[:2])
        if competence is not None:
            weights = weights * competence
        scores = np.einsum("sn,snc->nc", weights, np.log(np.clip(probs, EPS, 1.0)))
        if neighbour_dist is not None:
            scores += np.einsum(
                "s,snc->nc", self.retrieval_weights, np.log(np.clip(neighbour_dist, EPS, 1.0))
            )
        return scores

    def predict_proba(
        self, probs: np.ndarray, neighbour_dist: np.ndarray | None, competence: np.ndarray | None = None
    ) -> np.ndarray:
        """Probabilities ``[N, C]`` from ``[S, N, C]`` inputs and ``[S, N]`` competence (:meth:`scores`)."""
        scores = self.scores(probs, neighbour_dist, competence) + self.bias
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def describe(self, names: Sequence[str]) -> dict[str, object]:
        return {
            "source": self.source,
            "specialists": {
                n: round(float(w), 4) for n, w in zip(names, self.specialist_weights, strict=True)
            },
            "retrieval": {n: round(float(w), 4) for n, w in zip(names, self.retrieval_weights, strict=True)},
            "bias": [round(float(b), 4) for b in self.bias],
        }


def neighbour_distribution(labels: np.ndarray, similarities: np.ndarray, num_classes: int) -> np.ndarray:
    """Similarity-weighted label distribution of retrieved cases (``[N, k]`` -> ``[N, C]``).

    Negative similarities count as zero; a little smoothing keeps every class possible. Rows
    with fewer than ``k`` neighbours pass ``-1`` labels, which are ignored.
    """
    labels = np.atleast_2d(labels)
    weights = np.clip(np.atleast_2d(similarities), 0.0, None) * (labels >= 0)
    dist = np.full((labels.shape[0], num_classes), SMOOTHING / num_classes, dtype=np.float64)
    for c in range(num_classes):
        dist[:, c] += (weights * (labels == c)).sum(axis=1)
    return dist / dist.sum(axis=1, keepdims=True)


def skill(validation: Mapping[str, float], num_classes: int) -> float:
    """Skill above chance from a card's validation metrics (balanced accuracy, else macro-F1)."""
    chance = 1.0 / num_classes
    for metric in ("balanced_accuracy", "macro_f1", "accuracy"):
        if metric in validation:
            return float(np.clip((validation[metric] - chance) / (1.0 - chance), 0.02, 1.0))
    return 0.5


def card_model(
    validations: Sequence[Mapping[str, float]], num_classes: int, *, with_retrieval: bool
) -> ConsensusModel:
    """Weights from the cards alone: each specialist by its skill; retrieval like an average member."""
    skills = np.asarray([skill(v, num_classes) for v in validations], dtype=np.float64)
    weights = skills / skills.sum()
    retrieval = weights if with_retrieval else np.zeros_like(weights)
    return ConsensusModel(weights, retrieval, np.zeros(num_classes), source="card")


def fit_model(
    probs: np.ndarray,
    neighbour_dist: np.ndarray | None,
    labels: np.ndarray,
    *,
    balance_classes: bool = True,
    l2: float = 1e-3,
    fit_bias: bool = True,
) -> ConsensusModel:
    """Fit non-negative weights and class biases by (class-balanced) cross-entropy.

    Args:
        probs: ``[S, N, C]`` specialists' probabilities on calibration cases.
        neighbour_dist: ``[S, N, C]`` neighbour label distributions (leave-one-out) or None.
        labels: ``[N]`` true labels.
        balance_classes: weight each class equally, so the decision rule favours balanced
            accuracy / macro-F1 rather than the majority class.
        l2: ridge penalty on the weights (keeps collinear sources from running off).
        fit_bias: fit the class biases with the weights; False holds them at zero, so the
            weights are the best ones for the specialists' own thresholds. A source that leans
            toward one class then cannot have its lean cancelled by a bias that is later reset.
    """
    num_sources, n, num_classes = probs.shape
    features = [np.log(np.clip(probs, EPS, 1.0))]
    if neighbour_dist is not None:
        features.append(np.log(np.clip(neighbour_dist, EPS, 1.0)))
    stacked = np.concatenate(features, axis=0)  # [F, N, C]
    num_features = stacked.shape[0]
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    sample_weight = (n / (num_classes * np.maximum(counts, 1)))[labels] if balance_classes else np.ones(n)
    sample_weight = sample_weight / sample_weight.sum()
    onehot = np.eye(num_classes)[labels]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, bias = theta[:num_features], theta[num_features:]
        scores = np.einsum("f,fnc->nc", w, stacked) + bias
        scores -= scores.max(axis=1, keepdims=True)
        log_z = np.log(np.exp(scores).sum(axis=1, keepdims=True))
        log_p = scores - log_z
        value = -(sample_weight * (onehot * log_p).sum(axis=1)).sum() + l2 * float(w @ w)
        resid = (np.exp(log_p) - onehot) * sample_weight[:, None]  # d loss / d scores
        grad_w = np.einsum("nc,fnc->f", resid, stacked) + 2 * l2 * w
        grad_b = resid.sum(axis=0)
        return float(value), np.concatenate([grad_w, grad_b])

    start = np.concatenate([np.full(num_features, 1.0 / num_features), np.zeros(num_classes)])
    bias_bound = (None, None) if fit_bias else (0.0, 0.0)
    bounds = [(0.0, None)] * num_features + [bias_bound] * num_classes
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    theta = result.x
    weights = theta[:num_features]
    retrieval = weights[num_sources:] if neighbour_dist is not None else np.zeros(num_sources)
    bias = theta[num_features:] - theta[num_features:].mean()
    return ConsensusModel(weights[:num_sources], retrieval, bias, source="calibrated")


def macro_f1(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """Macro-averaged F1 (classes absent from both labels and predictions count as 0)."""
    scores = []
    for c in range(num_classes):
        tp = float(np.sum((predicted == c) & (labels == c)))
        denominator = float(np.sum(predicted == c) + np.sum(labels == c))
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def tune_bias(
    model: ConsensusModel,
    probs: np.ndarray,
    neighbour_dist: np.ndarray | None,
    labels: np.ndarray,
    *,
    rounds: int = 2,
    candidates: int = 4096,
) -> ConsensusModel:
    """Move the class biases (the decision thresholds) to maximise macro-F1 on calibration cases.

    Cross-entropy fits good weights but puts the threshold where accuracy, not macro-F1, peaks.
    Coordinate ascent over each class's bias (class 0 is the reference), trying every shift at
    which a decision flips (quantiles of them beyond ``candidates`` cases).
    """
    base = model.scores(probs, neighbour_dist)
    num_classes = base.shape[1]
    bias = model.bias.copy()
    best = macro_f1(labels, np.argmax(base + bias, axis=1), num_classes)
    for _ in range(rounds):
        for c in range(1, num_classes):
            shifted = base + bias
            margins = shifted[:, c] - np.delete(shifted, c, axis=1).max(axis=1)
            flips = (
                -margins
                if margins.size <= candidates
                else np.quantile(-margins, np.linspace(0, 1, candidates))
            )
            for delta in np.unique(flips):
                trial = bias.copy()
                trial[c] += delta + 1e-9
                score = macro_f1(labels, np.argmax(base + trial, axis=1), num_classes)
                if score > best:
                    best, bias = score, trial
    return ConsensusModel(model.specialist_weights, model.retrieval_weights, bias, source=model.source)

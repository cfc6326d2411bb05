"""Keep the calibrated consensus at least as robust as the card-weighted vote.

Three guards around the fit of :func:`~gsco_runtime.arbiters.weights.fit_model`:

- a specialist that does significantly better on the calibration cases than its card says it
  does on held-out data has most likely seen those cases in training: the library is unclean,
  and the card weights are used instead;
- the fitted weights are shrunk toward the card weights, the more the fewer calibration cases;
- the class biases stay at zero (the specialists' own thresholds) unless moving them gains
  balanced accuracy significantly (paired bootstrap, seeded, 95 % interval above zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from gsco_runtime.arbiters.weights import ConsensusModel, fit_model, tune_bias

RESAMPLES = 1000
SHRINK_CASES = 200  # calibration cases at which fitted and card weights count equally
SHRUNK = "calibrated (shrunk)"
SHRUNK_THRESHOLDS = "calibrated (shrunk, thresholds moved)"


def bootstrap_balanced_accuracy(
    labels: np.ndarray, correct: np.ndarray, num_classes: int, rows: np.ndarray
) -> np.ndarray:
    """Balanced accuracy on each resample; ``correct`` is ``[N]`` or ``[M, N]``, ``rows`` ``[B, N]``."""
    resampled_labels = labels[rows]
    resampled = correct[..., rows]
    recalls = []
    for c in range(num_classes):
        in_class = resampled_labels == c
        with np.errstate(invalid="ignore", divide="ignore"):
            recalls.append((resampled & in_class).sum(axis=-1) / in_class.sum(axis=-1))
    return np.nanmean(np.stack(recalls), axis=0)


def _resample_rows(n: int, seed: int, resamples: int = RESAMPLES) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def significant_gain(
    labels: np.ndarray, before: np.ndarray, after: np.ndarray, num_classes: int, *, seed: int = 0
) -> bool:
    """Whether ``after`` beats ``before`` in balanced accuracy: paired bootstrap 95 % CI above zero."""
    rows = _resample_rows(labels.shape[0], seed)
    scores = bootstrap_balanced_accuracy(
        labels, np.stack([after == labels, before == labels]), num_classes, rows
    )
    return bool(np.nanpercentile(scores[0] - scores[1], 2.5) > 0.0)


def looks_trained_on(
    labels: np.ndarray, predicted: np.ndarray, num_classes: int, ceiling: float, *, seed: int = 0
) -> bool:
    """Whether the calibration balanced accuracy's 95 % CI lies wholly above the card's ``ceiling``."""
    rows = _resample_rows(labels.shape[0], seed)
    scores = bootstrap_balanced_accuracy(labels, predicted == labels, num_classes, rows)
    return bool(np.nanpercentile(scores, 2.5) > ceiling)


def shrink(fitted: ConsensusModel, card: ConsensusModel, cases: int) -> ConsensusModel:
    """``lam * fitted + (1 - lam) * card`` weights with ``lam = cases / (cases + SHRINK_CASES)``.

    The fitted weights are first rescaled to the card weights' total, so only their direction
    (who counts how much), not their scale, moves the vote. Biases are reset to zero.
    """
    fitted_weights = np.concatenate([fitted.specialist_weights, fitted.retrieval_weights])
    card_weights = np.concatenate([card.specialist_weights, card.retrieval_weights])
    if fitted_weights.sum() > 0:
        fitted_weights = fitted_weights * (card_weights.sum() / fitted_weights.sum())
    lam = cases / (cases + SHRINK_CASES)
    weights = lam * fitted_weights + (1.0 - lam) * card_weights
    count = card.specialist_weights.shape[0]
    return ConsensusModel(weights[:count], weights[count:], np.zeros_like(card.bias), source=SHRUNK)


def robust_model(
    probs: np.ndarray,
    neighbour_dist: np.ndarray | None,
    labels: np.ndarray,
    card: ConsensusModel,
    ceilings: Sequence[tuple[str, float | None]],
    *,
    seed: int = 0,
    weights_for_served_thresholds: bool = False,
) -> ConsensusModel:
    """The consensus weights for calibration features ``[S, N, C]``, guarded as the module says.

    Args:
        probs: ``[S, N, C]`` specialists' probabilities on the calibration cases.
        neighbour_dist: ``[S, N, C]`` leave-one-out neighbour label distributions, or None.
        labels: ``[N]`` true labels.
        card: the card-weighted model (fallback and shrinkage target).
        ceilings: per specialist, its name and the upper end of its card's balanced-accuracy
            interval (None when the card has none).
        seed: seed of the bootstrap resamples.
        weights_for_served_thresholds: keep the specialists' own thresholds with weights fitted
            for them (biases held at zero in the fit), not with the weights of the fit that
            moved the biases and then had them reset. The moved thresholds are the same, but the
            bootstrap then tests them against that pool, so it can decide otherwise.
    """
    num_classes = probs.shape[2]
    suspects = [
        name
        for (name, ceiling), p in zip(ceilings, probs, strict=True)
        if ceiling is not None and looks_trained_on(labels, p.argmax(axis=1), num_classes, ceiling, seed=seed)
    ]
    if suspects:
        return replace(card, source=f"card (library looks like training data of {', '.join(suspects)})")
    shrunk = shrink(fit_model(probs, neighbour_dist, labels), card, labels.shape[0])
    tuned = tune_bias(shrunk, probs, neighbour_dist, labels)
    if weights_for_served_thresholds:
        held = fit_model(probs, neighbour_dist, labels, fit_bias=False)
        shrunk = shrink(held, card, labels.shape[0])
    before = shrunk.predict_proba(probs, neighbour_dist).argmax(axis=1)
    after = tuned.predict_proba(probs, neighbour_dist).argmax(axis=1)
    if significant_gain(labels, before, after, num_classes, seed=seed):
        return replace(tuned, source=SHRUNK_THRESHOLDS)
    return shrunk

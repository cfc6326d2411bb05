"""Calibrate the consensus weights on the case library, never on the cases being evaluated.

Every library case is a labelled example the specialists did not see at the hub: their stored
probabilities on it and its leave-one-out neighbours (retrieved among the *other* library cases,
exactly as for a new query) are the calibration features. A stratified sample caps the cost on
large libraries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gsco_runtime.arbiters.weights import ConsensusModel, fit_model, neighbour_distribution, tune_bias
from gsco_runtime.pool.specialist import LoadedSpecialist
from gsco_runtime.rad.retriever import Neighbours, Retriever

CALIBRATION_VERSION = "3"  # part of the cache key: bump when the fitting procedure changes
MAX_CALIBRATION_ROWS = 3000
MIN_CASES_PER_CLASS = 8


def neighbour_labels(
    neighbours: Sequence[Neighbours], library_labels: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pad neighbour lists to ``[N, k]`` label and similarity arrays (label ``-1`` = none)."""
    labels = np.full((len(neighbours), k), -1, dtype=np.int64)
    sims = np.zeros((len(neighbours), k), dtype=np.float64)
    for i, found in enumerate(neighbours):
        count = min(k, found.rows.shape[0])
        labels[i, :count] = library_labels[found.rows[:count]]
        sims[i, :count] = found.similarities[:count]
    return labels, sims


def calibration_rows(labels: np.ndarray, max_rows: int, seed: int = 0) -> np.ndarray:
    """A stratified, seeded sample of library rows (all rows when the library is small)."""
    if labels.shape[0] <= max_rows:
        return np.arange(labels.shape[0])
    rng = np.random.default_rng(seed)
    share = max_rows / labels.shape[0]
    picked = [
        rng.choice(
            np.flatnonzero(labels == c), size=max(1, round(share * int((labels == c).sum()))), replace=False
        )
        for c in np.unique(labels)
    ]
    return np.sort(np.concatenate(picked))


def calibrate(
    specialists: Sequence[LoadedSpecialist], retriever: Retriever, *, seed: int = 0
) -> ConsensusModel | None:
    """Fit the consensus weights on the library; None when it has too few cases of some class."""
    library = retriever.library
    num_classes = len(library.label_names)
    counts = np.bincount(library.labels, minlength=num_classes)
    if counts.min() < MIN_CASES_PER_CLASS:
        return None
    rows = calibration_rows(library.labels, MAX_CALIBRATION_ROWS, seed)
    probs, dists = [], []
    for specialist in specialists:
        entry = retriever.ensure(specialist.info.model_digest, specialist.predict_many)
        probs.append(entry.probabilities[rows])
        found = retriever.leave_one_out(specialist.info.model_digest, specialist.predict_many, rows)
        labels, sims = neighbour_labels(found, library.labels, retriever.k)
        dists.append(neighbour_distribution(labels, sims, num_classes))
    stacked_probs, stacked_dists, labels = np.stack(probs), np.stack(dists), library.labels[rows]
    return tune_bias(fit_model(stacked_probs, stacked_dists, labels), stacked_probs, stacked_dists, labels)

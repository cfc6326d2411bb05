"""Calibrate the consensus weights on the case library, never on the cases being evaluated.

Every library case is a labelled example: the specialists' stored probabilities on it and its
leave-one-out neighbours (retrieved among the *other* library cases, exactly as for a new query)
are the calibration features. A stratified sample caps the cost on large libraries.

The library must be data no served specialist trained on: when its source digest equals a
card's training-set digest (``registry.bundle.provenance``), or when it has too few cases of
some class, the card weights are used and the model's ``source`` says why. The fit itself is
guarded by :func:`~gsco_runtime.arbiters.robust.robust_model`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from gsco_runtime.arbiters.retrieved import retrieved_distributions
from gsco_runtime.arbiters.robust import robust_model
from gsco_runtime.arbiters.weights import ConsensusModel, card_model
from gsco_runtime.cases.library import CaseLibrary
from gsco_runtime.pool.specialist import LoadedSpecialist
from gsco_runtime.rad.retriever import Neighbours, Retriever

CALIBRATION_VERSION = "5"  # part of the cache key: bump when the fitting procedure changes
MAX_CALIBRATION_ROWS = 3000
MIN_CASES_PER_CLASS = 8


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


def unusable_reason(specialists: Sequence[LoadedSpecialist], library: CaseLibrary) -> str | None:
    """Why ``library`` must not calibrate these specialists; None when it may."""
    trained_on = [
        s.info.name
        for s in specialists
        if library.source_digest is not None and library.source_digest in s.info.training_set_digests
    ]
    if trained_on:
        return f"library overlaps training data of {', '.join(trained_on)}"
    counts = np.bincount(library.labels, minlength=len(library.label_names))
    if counts.min() < MIN_CASES_PER_CLASS:
        return "too few calibration cases"
    return None


def specialists_card_model(
    specialists: Sequence[LoadedSpecialist], *, with_retrieval: bool
) -> ConsensusModel:
    """Card weights of these specialists."""
    num_classes = len(specialists[0].info.label_names)
    return card_model([s.info.validation for s in specialists], num_classes, with_retrieval=with_retrieval)


def card_ceiling(specialist: LoadedSpecialist) -> tuple[str, float | None]:
    """The specialist's name and the upper end of its card's balanced-accuracy interval (or the value)."""
    info = specialist.info
    metric = "balanced_accuracy"
    return info.name, info.validation_upper.get(metric, info.validation.get(metric))


@dataclass(frozen=True)
class CalibrationCases:
    """What the fit sees on the sampled library rows.

    Their labels ``[N]``; per specialist its probabilities ``[S, N, C]`` there, and the cases it
    retrieves for each among the *other* library cases (leave-one-out).
    """

    labels: np.ndarray
    probabilities: np.ndarray
    neighbours: list[list[Neighbours]]


def calibration_cases(
    specialists: Sequence[LoadedSpecialist], retriever: Retriever, *, seed: int = 0
) -> CalibrationCases:
    """The calibration cases of these specialists on the retriever's library (a seeded stratified sample)."""
    library = retriever.library
    rows = calibration_rows(library.labels, MAX_CALIBRATION_ROWS, seed)
    probs, found = [], []
    for specialist in specialists:
        entry = retriever.ensure(specialist.info.model_digest, specialist.predict_many)
        probs.append(entry.probabilities[rows])
        found.append(retriever.leave_one_out(specialist.info.model_digest, specialist.predict_many, rows))
    return CalibrationCases(library.labels[rows], np.stack(probs), found)


def calibrate(
    specialists: Sequence[LoadedSpecialist], retriever: Retriever, *, seed: int = 0
) -> ConsensusModel:
    """The consensus weights calibrated on the library, or the card weights with the reason why not."""
    library = retriever.library
    card = specialists_card_model(specialists, with_retrieval=True)
    reason = unusable_reason(specialists, library)
    if reason is not None:
        return replace(card, source=f"card ({reason})")
    cases = calibration_cases(specialists, retriever, seed=seed)
    dists = retrieved_distributions(retriever, cases.neighbours, len(library.label_names))
    ceilings = [card_ceiling(s) for s in specialists]
    return robust_model(cases.probabilities, dists, cases.labels, card, ceilings, seed=seed)

"""Where the specialists disagree: every method scored again on the cases their labels differ on.

The issue's bar for the arbiter is "above the best single specialist where specialists
disagree". On cases where all served specialists give the same label, the vote, RAD and the
consensus can hardly differ from the best specialist; the disagreement subset is where
collaboration has to earn its place. Per method: n, accuracy and balanced accuracy (when every
class occurs in the subset), each with the main table's seeded 95 % percentile bootstrap
(resampled within the subset), and for each collaboration method the exact McNemar test against
the best single specialist chosen on the *whole* evaluation set (the main table's reference). Off
the subset all specialists give the same answers, so that is also the best specialist on the
subset (ties go to the first in pool order in both).

Below :data:`MIN_CASES_FOR_INTERVALS` cases the block carries no intervals (a bootstrap of a
handful of cases pretends a precision it does not have); McNemar's exact test stays, as it is
valid at any size. With no disagreement the block says so instead of being absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hub.evaluation.significance import (
    COLLABORATION_KINDS,
    INTERVALS,
    MetricComparison,
    Scored,
    accuracy_comparison,
    bootstrap_values,
    choose_reference,
    intervals,
)
from hub.evaluation.statistics import Interval
from specialist.metrics import accuracy_of, balanced_accuracy_of

SUBSET = "the evaluation cases on which the served specialists' predicted labels are not all the same"
REFERENCE_RULE = (
    "the best single specialist chosen on the whole evaluation set, the main table's reference; "
    "not re-chosen on the subset"
)
NAMED_REFERENCE_RULE = "the specialist named before the evaluation, the main table's reference"
MIN_CASES_FOR_INTERVALS = 10
INTERVALS_WITHIN = f"{INTERVALS}, resampled within the subset with the main table's seed"
SUBSET_METRICS = ("accuracy", "balanced_accuracy")

NO_DISAGREEMENT = "no disagreement"
TOO_FEW = f"fewer than {MIN_CASES_FOR_INTERVALS} disagreements: no confidence intervals"
ANALYSED = "analysed"


@dataclass(frozen=True)
class SubsetRow:
    """One method on the disagreement subset."""

    name: str
    kind: str
    n: int
    correct: int
    accuracy: float
    balanced_accuracy: float | None
    """None unless every class occurs in the subset."""
    accuracy_ci: Interval | None = None
    balanced_accuracy_ci: Interval | None = None


@dataclass(frozen=True)
class SubsetComparison:
    """A collaboration method against the reference on the subset (``difference = method - reference``)."""

    method: str
    kind: str
    reference: str
    accuracy: MetricComparison


@dataclass(frozen=True)
class Disagreement:
    """What ``evaluation.json`` says under ``disagreement``."""

    subset: str
    status: str
    n: int
    of: int
    class_counts: list[int]
    specialists: int
    reference: str | None
    reference_rule: str
    resamples: int
    seed: int
    intervals: str
    min_cases_for_intervals: int
    methods: list[SubsetRow]
    comparisons: list[SubsetComparison]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def labels_differ(said: np.ndarray) -> np.ndarray:
    """``[N]`` booleans from ``[S, N]`` labels: the sources' labels are not all the same (never with one)."""
    return (said != said[0]).any(axis=0)


def disagreement_mask(methods: Sequence[Scored]) -> np.ndarray:
    """``[N]`` booleans: the specialists' predicted labels are not all the same (never with one)."""
    answers = [m.predicted for m in methods if m.kind == "specialist"]
    if not answers:
        return np.zeros(0 if not methods else methods[0].predicted.shape[0], dtype=bool)
    return labels_differ(np.stack(answers))


def subset_scores(
    labels: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None, num_classes: int
) -> dict[str, float | None]:
    """Accuracy, and balanced accuracy when every one of ``num_classes`` occurs in ``labels``."""
    every_class = np.unique(labels).size == num_classes
    return {
        "accuracy": accuracy_of(labels, predicted),
        "balanced_accuracy": balanced_accuracy_of(labels, predicted) if every_class else None,
    }


def analyse(
    labels: np.ndarray,
    methods: Sequence[Scored],
    num_classes: int,
    *,
    count: int,
    seed: int,
    named_reference: str | None = None,
) -> Disagreement:
    """The disagreement block for ``methods`` on ``labels``.

    ``count``, ``seed`` and ``named_reference`` as for the main rows (``significance.assess``).
    """
    mask = disagreement_mask(methods)
    reference, _ = choose_reference(labels, methods, named_reference)
    truth = labels[mask]
    n = int(mask.sum())
    subset = [Scored(m.name, m.kind, m.predicted[mask], None) for m in methods]
    status = NO_DISAGREEMENT if n == 0 else TOO_FEW if n < MIN_CASES_FOR_INTERVALS else ANALYSED
    values = None
    if status == ANALYSED:
        values = bootstrap_values(truth, subset, num_classes, count, seed, SUBSET_METRICS, subset_scores)
    rows, comparisons = [], []
    if n:
        cis = intervals(values, SUBSET_METRICS) if values is not None else [{}] * len(subset)
        for method, ci in zip(subset, cis, strict=True):
            correct = method.predicted == truth
            rows.append(
                SubsetRow(
                    method.name,
                    method.kind,
                    n,
                    int(correct.sum()),
                    **subset_scores(truth, method.predicted, None, num_classes),
                    **ci,
                )
            )
    if n and reference is not None:
        ref = subset[reference]
        for m, method in enumerate(subset):
            if method.kind not in COLLABORATION_KINDS:
                continue
            differences = None if values is None else values[m, 0] - values[reference, 0]
            comparisons.append(
                SubsetComparison(
                    method.name,
                    method.kind,
                    ref.name,
                    accuracy_comparison(ref.predicted == truth, method.predicted == truth, differences),
                )
            )
    return Disagreement(
        subset=SUBSET,
        status=status,
        n=n,
        of=int(labels.shape[0]),
        class_counts=np.bincount(truth, minlength=num_classes).tolist(),
        specialists=sum(m.kind == "specialist" for m in methods),
        reference=None if reference is None else methods[reference].name,
        reference_rule=REFERENCE_RULE if named_reference is None else NAMED_REFERENCE_RULE,
        resamples=count,
        seed=seed,
        intervals=INTERVALS_WITHIN,
        min_cases_for_intervals=MIN_CASES_FOR_INTERVALS,
        methods=rows,
        comparisons=comparisons,
    )

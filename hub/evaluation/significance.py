"""Confidence intervals for every method row and paired tests against the best single specialist.

The reference is the specialist with the highest accuracy on the evaluation set itself (the
first in pool order on ties). Picking it on the same cases favours the reference, so a
collaboration method found "significantly above" it has cleared a slightly raised bar.
Each collaboration method (vote, RAD only, consensus, GSCo) is compared with it. A reference
named before the evaluation (``gsco-hub evaluate --reference``, e.g. a study's baseline recipe)
replaces that choice, and then every other specialist is compared with it too:

- accuracy: exact two-sided McNemar test, difference CI from the paired bootstrap;
- AUC: DeLong's test and its normal-theory CI for binary tasks; for more classes the macro
  one-vs-rest AUC by paired bootstrap (percentile CI, bootstrap p-value);
- macro-F1: paired bootstrap (percentile CI, bootstrap p-value).

The arbiters (consensus, its ablation, GSCo) are also compared with the specialists' plain vote
with the same tests (``against_vote``): the consensus must be at least as robust as a vote.

p-values are per comparison, not adjusted for the several methods compared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gsco_common.errors import DataError
from hub.evaluation.metrics import method_scores
from hub.evaluation.statistics import (
    LEVEL,
    Interval,
    bootstrap_p_value,
    delong_test,
    mcnemar_exact,
    percentile_interval,
    resamples,
    verdict,
)

METRICS = ("accuracy", "macro_f1", "auc")
Scorer = Callable[[np.ndarray, np.ndarray, np.ndarray | None, int], dict]
"""``(labels, predicted, scores, num_classes) -> {metric: value or None}``, e.g. ``method_scores``."""
COLLABORATION_KINDS = ("vote", "rad", "consensus", "ablation", "gsco")
ARBITER_KINDS = ("consensus", "ablation", "gsco")
"""Methods that arbitrate between the specialists: each is also tested against their plain vote."""
REFERENCE_RULE = (
    "the best specialist: highest accuracy on this evaluation set, the first in pool order on ties"
)
NAMED_REFERENCE_RULE = "named before the evaluation (`--reference`)"
INTERVALS = "95 % percentile bootstrap, cases resampled with replacement, the same resamples for every method"
MCNEMAR = "exact McNemar (two-sided binomial test on the discordant pairs)"
DELONG = "DeLong (binary AUC, normal-theory CI of the difference)"
BOOTSTRAP_TEST = "paired bootstrap (percentile CI, two-sided bootstrap p)"


@dataclass(frozen=True)
class Scored:
    """One method's answers on the evaluation set: a label per case (``-1`` = none) and scores."""

    name: str
    kind: str
    predicted: np.ndarray
    scores: np.ndarray | None
    note: str = ""


@dataclass(frozen=True)
class MetricComparison:
    """``method - reference`` for one metric, its CI, p-value, the test used and the verdict."""

    difference: float | None
    ci: Interval | None
    p_value: float | None
    test: str
    verdict: str
    reference_only: int | None = None
    """McNemar only: cases the reference got right and the method wrong."""
    method_only: int | None = None
    """McNemar only: cases the method got right and the reference wrong."""


@dataclass(frozen=True)
class Comparison:
    method: str
    kind: str
    reference: str
    accuracy: MetricComparison
    macro_f1: MetricComparison
    auc: MetricComparison | None


@dataclass(frozen=True)
class Statistics:
    """What ``evaluation.json`` says about uncertainty (key ``statistics``)."""

    resamples: int
    seed: int
    level: float
    intervals: str
    reference: str | None
    reference_rule: str
    comparisons: list[Comparison]
    against_vote: list[Comparison] = field(default_factory=list)
    """Each arbiter (:data:`ARBITER_KINDS`) against the specialists' vote (none without a vote row)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bootstrap_values(
    labels: np.ndarray,
    methods: Sequence[Scored],
    num_classes: int,
    count: int,
    seed: int,
    metrics: Sequence[str] = METRICS,
    scorer: Scorer = method_scores,
) -> np.ndarray:
    """Each method's ``metrics`` on each resample ``[M, len(metrics), count]`` (NaN where undefined)."""
    values = np.full((len(methods), len(metrics), count), np.nan)
    for b, rows in enumerate(resamples(labels.shape[0], count, seed)):
        for m, method in enumerate(methods):
            scores = method.scores[rows] if method.scores is not None else None
            result = scorer(labels[rows], method.predicted[rows], scores, num_classes)
            for j, metric in enumerate(metrics):
                if result[metric] is not None:
                    values[m, j, b] = result[metric]
    return values


def intervals(values: np.ndarray, metrics: Sequence[str] = METRICS) -> list[dict[str, Interval | None]]:
    """``{metric}_ci`` per method from :func:`bootstrap_values`' output."""
    return [
        {f"{metric}_ci": percentile_interval(values[m, j], LEVEL) for j, metric in enumerate(metrics)}
        for m in range(values.shape[0])
    ]


def reference_index(labels: np.ndarray, methods: Sequence[Scored]) -> int | None:
    """Index of the best single specialist by :data:`REFERENCE_RULE`; None without specialists."""
    candidates = [i for i, m in enumerate(methods) if m.kind == "specialist"]
    if not candidates:
        return None
    accuracies = [float(np.mean(methods[i].predicted == labels)) for i in candidates]
    return candidates[int(np.argmax(accuracies))]


def choose_reference(
    labels: np.ndarray, methods: Sequence[Scored], named: str | None = None
) -> tuple[int | None, str]:
    """The reference's index and the rule that chose it: the specialist ``named``, else the best one."""
    if named is None:
        return reference_index(labels, methods), REFERENCE_RULE
    check_reference(named, [m.name for m in methods if m.kind == "specialist"])
    return next(i for i, m in enumerate(methods) if m.name == named), NAMED_REFERENCE_RULE


def check_reference(named: str, specialists: Sequence[str]) -> None:
    """:class:`DataError` unless ``named`` is one of the served ``specialists`` ("name vN")."""
    if named not in specialists:
        raise DataError(
            f"--reference: no served specialist is named {named!r}; "
            f"served: {', '.join(specialists) or 'none'}"
        )


def _bootstrap_comparison(point: float | None, differences: np.ndarray) -> MetricComparison:
    p = bootstrap_p_value(differences)
    ci = percentile_interval(differences, LEVEL)
    return MetricComparison(point, ci, p, BOOTSTRAP_TEST, verdict(point or 0.0, p))


def _auc_comparison(
    labels: np.ndarray, reference: Scored, method: Scored, num_classes: int, differences: np.ndarray
) -> MetricComparison | None:
    if reference.scores is None or method.scores is None:
        return None
    if num_classes > 2:
        point_ref = method_scores(labels, reference.predicted, reference.scores, num_classes)["auc"]
        point = method_scores(labels, method.predicted, method.scores, num_classes)["auc"]
        if point is None or point_ref is None:
            return MetricComparison(None, None, None, BOOTSTRAP_TEST, verdict(0.0, None))
        return _bootstrap_comparison(point - point_ref, differences)
    if np.bincount(labels, minlength=2).min() < 2:
        return MetricComparison(None, None, None, DELONG + ": needs two cases of each class", "not tested")
    test = delong_test(labels == 1, reference.scores[:, 1], method.scores[:, 1], LEVEL)
    return MetricComparison(
        test.difference, test.ci, test.p_value, DELONG, verdict(test.difference, test.p_value)
    )


def accuracy_comparison(
    reference_correct: np.ndarray, correct: np.ndarray, differences: np.ndarray | None
) -> MetricComparison:
    """Accuracy of a method minus the reference's: exact McNemar test, CI from bootstrap ``differences``.

    ``differences`` None: no interval (e.g. too few cases for a bootstrap to mean anything).
    """
    mcnemar = mcnemar_exact(reference_correct, correct)
    difference = float(correct.mean() - reference_correct.mean())
    return MetricComparison(
        difference,
        None if differences is None else percentile_interval(differences, LEVEL),
        mcnemar.p_value,
        MCNEMAR,
        verdict(difference, mcnemar.p_value),
        mcnemar.reference_only,
        mcnemar.method_only,
    )


def compare(
    labels: np.ndarray,
    methods: Sequence[Scored],
    values: np.ndarray,
    num_classes: int,
    reference: int,
    kinds: Sequence[str] = COLLABORATION_KINDS,
) -> list[Comparison]:
    """Each method of ``kinds`` against ``methods[reference]``; ``values`` from :func:`bootstrap_values`."""
    ref = methods[reference]
    ref_correct = ref.predicted == labels
    result = []
    for m, method in enumerate(methods):
        if method.kind not in kinds or m == reference:
            continue
        differences = values[m] - values[reference]
        accuracy = accuracy_comparison(ref_correct, method.predicted == labels, differences[0])
        f1_point = (
            method_scores(labels, method.predicted, None, num_classes)["macro_f1"]
            - method_scores(labels, ref.predicted, None, num_classes)["macro_f1"]
        )
        result.append(
            Comparison(
                method=method.name,
                kind=method.kind,
                reference=ref.name,
                accuracy=accuracy,
                macro_f1=_bootstrap_comparison(float(f1_point), differences[1]),
                auc=_auc_comparison(labels, ref, method, num_classes, differences[2]),
            )
        )
    return result


def assess(
    labels: np.ndarray,
    methods: Sequence[Scored],
    num_classes: int,
    *,
    count: int,
    seed: int,
    reference: str | None = None,
) -> tuple[list[dict[str, Interval | None]], Statistics]:
    """Per-method CIs (in ``methods`` order), the comparisons against the reference and the vote.

    The reference is the best specialist, or the specialist named ``reference``; a named one is
    compared with every other specialist as well as with the collaboration methods. Each arbiter
    is also compared with the specialists' vote (``against_vote``).
    """
    values = bootstrap_values(labels, methods, num_classes, count, seed)
    index, rule = choose_reference(labels, methods, reference)
    kinds = COLLABORATION_KINDS if reference is None else ("specialist", *COLLABORATION_KINDS)
    comparisons = [] if index is None else compare(labels, methods, values, num_classes, index, kinds)
    vote = next((i for i, m in enumerate(methods) if m.kind == "vote"), None)
    against_vote = [] if vote is None else compare(labels, methods, values, num_classes, vote, ARBITER_KINDS)
    return intervals(values), Statistics(
        resamples=count,
        seed=seed,
        level=LEVEL,
        intervals=INTERVALS,
        reference=None if index is None else methods[index].name,
        reference_rule=rule,
        comparisons=comparisons,
        against_vote=against_vote,
    )

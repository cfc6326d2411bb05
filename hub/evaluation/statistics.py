"""Uncertainty and paired tests for ``gsco-hub evaluate``: plain numpy, no runtime.

- Percentile bootstrap: cases are resampled with replacement; every method is scored on the
  *same* resamples (one seeded index stream), so intervals and differences are paired.
- Exact McNemar: two-sided binomial test on the discordant pairs (``p = min(1, 2 P(X <= min(b,
  c)))`` with ``X ~ Bin(b + c, 1/2)``), the conservative exact version, not the mid-p.
- DeLong's test for two correlated binary ROC AUCs (DeLong, DeLong & Clarke-Pearson 1988), with
  the midrank algorithm of Sun & Xu (2014); the AUC is the Mann-Whitney estimate (ties count 1/2).
- For any paired difference without a closed form (macro-F1, multi-class macro AUC): a
  percentile interval of the bootstrap differences and the two-sided bootstrap p-value
  ``min(1, 2 min(P*(d <= 0), P*(d >= 0)))``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from gsco_common.errors import DataError
from specialist.metrics import midranks

ALPHA = 0.05
LEVEL = 0.95
MIN_RESAMPLES = 1000
DEFAULT_RESAMPLES = 2000
Interval = tuple[float, float]


def resamples(n: int, count: int, seed: int) -> Iterator[np.ndarray]:
    """``count`` bootstrap index vectors of ``n`` cases drawn with replacement, seeded.

    One stream of indices for all methods keeps them paired; drawn one at a time so memory stays
    ``O(n)`` on large evaluation sets.
    """
    if n < 1 or count < 1:
        raise DataError("a bootstrap needs at least one case and one resample")
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield rng.integers(0, n, n)


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> Interval | None:
    """Percentile interval of bootstrap ``values``; NaN marks a resample where the metric is undefined.

    None when fewer than half of the resamples give a value (e.g. an AUC on a rare class).
    """
    values = np.asarray(values, dtype=np.float64)
    defined = values[~np.isnan(values)]
    if defined.size == 0 or defined.size < values.size / 2:
        return None
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_p_value(differences: np.ndarray) -> float | None:
    """Two-sided bootstrap p-value of a paired difference being zero (NaN resamples skipped)."""
    differences = np.asarray(differences, dtype=np.float64)
    defined = differences[~np.isnan(differences)]
    if defined.size == 0 or defined.size < differences.size / 2:
        return None
    return float(min(1.0, 2 * min(np.mean(defined <= 0), np.mean(defined >= 0))))


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test of two methods' correctness on the same cases."""

    reference_only: int
    """Discordant pairs the reference got right and the other method wrong (``b``)."""
    method_only: int
    """Discordant pairs the other method got right and the reference wrong (``c``)."""
    p_value: float


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p of ``k`` successes in ``n`` fair coin flips: ``min(1, 2 P(X <= min(k, n-k)))``."""
    if n == 0:
        return 1.0
    low = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(low + 1)) / 2**n
    return min(1.0, 2.0 * tail)


def mcnemar_exact(reference_correct: np.ndarray, method_correct: np.ndarray) -> McNemar:
    """Exact two-sided McNemar test; the inputs are booleans ``[N]`` on the same cases."""
    reference_correct = np.asarray(reference_correct, dtype=bool)
    method_correct = np.asarray(method_correct, dtype=bool)
    if reference_correct.shape != method_correct.shape:
        raise DataError("McNemar's test needs both methods' answers on the same cases")
    b = int((reference_correct & ~method_correct).sum())
    c = int((method_correct & ~reference_correct).sum())
    return McNemar(reference_only=b, method_only=c, p_value=binomial_two_sided(b, b + c))


@dataclass(frozen=True)
class DeLong:
    """Two correlated AUCs on the same cases, their difference (``b - a``) and its test."""

    auc_a: float
    auc_b: float
    difference: float
    standard_error: float
    ci: Interval
    p_value: float


def delong_components(positives: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong's structural components ``V10`` (one per positive) and ``V01`` (per negative)."""
    positives = np.asarray(positives, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    x, y = scores[positives], scores[~positives]
    m, n = x.size, y.size
    if m < 2 or n < 2:
        raise DataError("DeLong's test needs at least two cases of each class")
    tz = midranks(np.concatenate([x, y]))
    tx, ty = midranks(x), midranks(y)
    auc = (tz[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    return float(auc), v10, v01


def delong_test(
    positives: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, level: float = LEVEL
) -> DeLong:
    """DeLong's test of ``AUC(b) - AUC(a)`` for scores of the positive class on the same cases."""
    auc_a, v10_a, v01_a = delong_components(positives, scores_a)
    auc_b, v10_b, v01_b = delong_components(positives, scores_b)
    s10 = np.cov(np.stack([v10_a, v10_b]))
    s01 = np.cov(np.stack([v01_a, v01_b]))
    covariance = s10 / v10_a.size + s01 / v01_a.size
    variance = max(float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]), 0.0)
    difference = auc_b - auc_a
    se = math.sqrt(variance)
    if se == 0.0:
        p = 1.0 if difference == 0.0 else 0.0
    else:
        p = math.erfc(abs(difference) / se / math.sqrt(2.0))
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return DeLong(auc_a, auc_b, difference, se, (difference - z * se, difference + z * se), p)


def verdict(difference: float, p_value: float | None, alpha: float = ALPHA) -> str:
    """Plain words for a paired comparison against the reference."""
    if p_value is None:
        return "not tested"
    if p_value >= alpha:
        return "not significantly different"
    return f"significantly {'above' if difference > 0 else 'below'} at {alpha:g}"

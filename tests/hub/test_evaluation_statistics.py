"""Bootstrap intervals, exact McNemar and DeLong's test give known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, norm
from sklearn.metrics import roc_auc_score

from gsco_common.errors import DataError
from hub.evaluation import statistics
from hub.evaluation.evaluate import EvaluationReport, MethodResult, evaluate
from hub.evaluation.report import error_bars
from hub.evaluation.significance import METRICS, Scored, assess, reference_index


def _correctness(b: int, c: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference and method correctness with ``b`` reference-only and ``c`` method-only hits."""
    reference = np.array([True] * b + [False] * c + [True] * both + [False] * neither)
    method = np.array([False] * b + [True] * c + [True] * both + [False] * neither)
    return reference, method


def test_mcnemar_p_on_a_hand_built_table_equals_the_binomial_test() -> None:
    reference, method = _correctness(b=2, c=10, both=30, neither=5)
    result = statistics.mcnemar_exact(reference, method)
    assert (result.reference_only, result.method_only) == (2, 10)
    # closed form: 2 * (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 158 / 4096
    assert result.p_value == pytest.approx(158 / 4096, abs=1e-15)
    assert result.p_value == pytest.approx(binomtest(2, 12, 0.5).pvalue, abs=1e-12)


@pytest.mark.parametrize(("k", "n"), [(0, 0), (3, 6), (0, 5), (7, 9), (40, 100), (1, 1)])
def test_two_sided_binomial_p_equals_scipys(k: int, n: int) -> None:
    expected = 1.0 if n == 0 else binomtest(k, n, 0.5).pvalue
    assert statistics.binomial_two_sided(k, n) == pytest.approx(expected, abs=1e-12)


def test_a_method_better_on_every_discordant_pair_is_significantly_above() -> None:
    reference, method = _correctness(b=0, c=8, both=20, neither=4)
    result = statistics.mcnemar_exact(reference, method)
    assert result.p_value == pytest.approx(2 / 2**8)
    gain = float(method.mean() - reference.mean())
    assert statistics.verdict(gain, result.p_value) == "significantly above at 0.05"
    flipped = statistics.mcnemar_exact(method, reference)
    assert statistics.verdict(-gain, flipped.p_value) == "significantly below at 0.05"
    # three discordant pairs cannot reach 0.05 (p = 0.25) however one-sided they are
    few = statistics.mcnemar_exact(*_correctness(b=0, c=3, both=20, neither=4))
    assert few.p_value == pytest.approx(0.25)
    assert statistics.verdict(3 / 27, few.p_value) == "not significantly different"
    with pytest.raises(DataError, match="same cases"):
        statistics.mcnemar_exact(reference, method[:-1])


def _psi(x: float, y: float) -> float:
    return 1.0 if x > y else 0.5 if x == y else 0.0


def _brute_force_delong(positives: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """AUCs and var(AUC_b - AUC_a) straight from DeLong et al. (1988), eq. for V10, V01, S10, S01."""
    pos, neg = np.flatnonzero(positives), np.flatnonzero(~positives)
    v10 = np.array([[np.mean([_psi(s[i], s[j]) for j in neg]) for i in pos] for s in (a, b)])
    v01 = np.array([[np.mean([_psi(s[i], s[j]) for i in pos]) for j in neg] for s in (a, b)])
    s10 = np.array(
        [[np.sum((v10[r] - v10[r].mean()) * (v10[q] - v10[q].mean())) for q in range(2)] for r in range(2)]
    )
    s01 = np.array(
        [[np.sum((v01[r] - v01[r].mean()) * (v01[q] - v01[q].mean())) for q in range(2)] for r in range(2)]
    )
    s = s10 / (len(pos) - 1) / len(pos) + s01 / (len(neg) - 1) / len(neg)
    return float(v10[0].mean()), float(v10[1].mean()), float(s[0, 0] + s[1, 1] - 2 * s[0, 1])


def test_delong_matches_the_brute_force_definition_with_ties() -> None:
    rng = np.random.default_rng(4)
    positives = np.arange(30) % 3 == 0
    a = np.round(rng.random(30) + 0.4 * positives, 1)  # rounding makes ties
    b = np.round(rng.random(30) + 0.8 * positives, 1)
    auc_a, auc_b, variance = _brute_force_delong(positives, a, b)
    result = statistics.delong_test(positives, a, b)
    assert result.auc_a == pytest.approx(auc_a, abs=1e-12)
    assert result.auc_b == pytest.approx(roc_auc_score(positives, b), abs=1e-12)
    assert result.difference == pytest.approx(auc_b - auc_a, abs=1e-12)
    assert result.standard_error == pytest.approx(math.sqrt(variance), abs=1e-12)
    assert result.p_value == pytest.approx(2 * norm.sf(abs(auc_b - auc_a) / math.sqrt(variance)), abs=1e-12)
    half = norm.ppf(0.975) * math.sqrt(variance)
    assert result.ci == pytest.approx((auc_b - auc_a - half, auc_b - auc_a + half), abs=1e-9)


def test_delong_of_a_classifier_against_itself_is_no_difference() -> None:
    positives = np.array([True, True, True, False, False, False])
    scores = np.array([0.9, 0.4, 0.7, 0.5, 0.2, 0.1])
    result = statistics.delong_test(positives, scores, scores)
    assert (result.difference, result.p_value) == (0.0, 1.0)
    with pytest.raises(DataError, match="two cases of each class"):
        statistics.delong_test(np.array([True, False, False]), scores[:3], scores[:3])


def test_percentile_interval_and_bootstrap_p_on_known_values() -> None:
    assert statistics.percentile_interval(np.arange(1001.0)) == pytest.approx((25.0, 975.0), abs=1e-12)
    with_gaps = np.r_[np.arange(1001.0), [np.nan] * 1000]  # undefined resamples are skipped
    assert statistics.percentile_interval(with_gaps) == pytest.approx((25.0, 975.0), abs=1e-12)
    assert statistics.percentile_interval(np.r_[np.arange(10.0), [np.nan] * 11]) is None
    assert statistics.bootstrap_p_value(np.array([0.1, 0.2, -0.1, 0.3])) == 0.5
    assert statistics.bootstrap_p_value(np.array([0.1, 0.2, 0.3, 0.4])) == 0.0
    assert statistics.bootstrap_p_value(np.zeros(4)) == 1.0
    with pytest.raises(DataError, match="at least one case"):
        next(statistics.resamples(0, 10, 0))


def _methods(n: int = 60, seed: int = 0) -> tuple[np.ndarray, list[Scored]]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    weak = np.clip(0.5 + 0.15 * (2 * labels - 1) + rng.normal(0, 0.2, n), 0.01, 0.99)
    strong = np.clip(0.5 + 0.3 * (2 * labels - 1) + rng.normal(0, 0.2, n), 0.01, 0.99)
    probs = [np.stack([1 - p, p], axis=1) for p in (weak, strong)]
    vote = (probs[0] + probs[1]) / 2
    return labels, [
        Scored("weak v1", "specialist", probs[0].argmax(axis=1), probs[0]),
        Scored("strong v1", "specialist", probs[1].argmax(axis=1), probs[1]),
        Scored("vote", "vote", vote.argmax(axis=1), vote),
        Scored("copy of strong", "consensus", probs[1].argmax(axis=1), probs[1]),
        Scored("generalist", "generalist", np.where(labels == 1, 1, -1), None),
    ]


def test_intervals_are_seeded_percentiles_of_the_shared_resamples() -> None:
    labels, methods = _methods()
    cis, stats = assess(labels, methods, 2, count=1000, seed=11)
    again, _ = assess(labels, methods, 2, count=1000, seed=11)
    other, _ = assess(labels, methods, 2, count=1000, seed=12)
    assert cis == again and cis != other
    # known answer: the accuracy CI of the strong specialist, computed here from the same stream
    rng = np.random.default_rng(11)
    correct = methods[1].predicted == labels
    accs = [correct[rng.integers(0, 60, 60)].mean() for _ in range(1000)]
    assert cis[1]["accuracy_ci"] == tuple(np.percentile(accs, [2.5, 97.5]))
    for ci, method in zip(cis, methods, strict=True):
        point = float(np.mean(method.predicted == labels))
        assert ci["accuracy_ci"][0] <= point <= ci["accuracy_ci"][1]
    assert cis[4]["auc_ci"] is None and set(cis[0]) == {f"{m}_ci" for m in METRICS}
    assert (stats.resamples, stats.seed, stats.level) == (1000, 11, 0.95)


def test_the_best_specialist_is_the_reference_and_comparisons_are_paired() -> None:
    labels, methods = _methods()
    _, stats = assess(labels, methods, 2, count=1000, seed=0)
    assert reference_index(labels, methods) == 1 and stats.reference == "strong v1"
    assert [c.kind for c in stats.comparisons] == ["vote", "consensus"]
    copy = stats.comparisons[1]
    # the same resamples for both: a copy of the reference differs by exactly zero on each one
    assert copy.accuracy.ci == (0.0, 0.0) and copy.macro_f1.ci == (0.0, 0.0)
    assert copy.accuracy.p_value == 1.0 and copy.accuracy.verdict == "not significantly different"
    assert copy.auc is not None and copy.auc.difference == 0.0 and copy.auc.test.startswith("DeLong")
    vote = stats.comparisons[0]
    correct = methods[2].predicted == labels
    ref_correct = methods[1].predicted == labels
    assert vote.accuracy.difference == pytest.approx(correct.mean() - ref_correct.mean())
    assert vote.accuracy.reference_only == int((ref_correct & ~correct).sum())
    assert vote.accuracy.p_value == pytest.approx(statistics.mcnemar_exact(ref_correct, correct).p_value)
    tie = [methods[0], Scored("same again", "specialist", methods[0].predicted, methods[0].scores)]
    assert reference_index(labels, tie) == 0  # first in pool order on ties


def test_a_consensus_right_on_every_discordant_case_is_significantly_above() -> None:
    labels = np.arange(40) % 2
    reference = labels.copy()
    reference[:12] = 1 - reference[:12]  # 12 mistakes the consensus does not make
    onehot = np.eye(2)
    methods = [
        Scored("specialist", "specialist", reference, onehot[reference]),
        Scored("consensus", "consensus", labels, onehot[labels]),
    ]
    _, stats = assess(labels, methods, 2, count=1000, seed=0)
    accuracy = stats.comparisons[0].accuracy
    assert (accuracy.reference_only, accuracy.method_only) == (0, 12)
    assert accuracy.p_value == pytest.approx(2 / 2**12)
    assert accuracy.verdict == "significantly above at 0.05" and accuracy.difference == pytest.approx(0.3)


def test_each_arbiter_is_also_tested_against_the_vote() -> None:
    labels = np.arange(40) % 2
    onehot = np.eye(2)
    vote = labels.copy()
    vote[:10] = 1 - vote[:10]  # the vote misses cases 0-9
    consensus = labels.copy()
    consensus[30:32] = 1 - consensus[30:32]  # the consensus misses cases 30 and 31 instead
    methods = [
        Scored("specialist", "specialist", labels, onehot[labels]),
        Scored("vote", "vote", vote, onehot[vote]),
        Scored("RAD only", "rad", vote, onehot[vote]),
        Scored("consensus", "consensus", consensus, onehot[consensus]),
    ]
    _, stats = assess(labels, methods, 2, count=1000, seed=0)
    assert [c.method for c in stats.against_vote] == ["consensus"]  # arbiters only, not RAD
    test = stats.against_vote[0]
    assert test.reference == "vote"
    assert (test.accuracy.reference_only, test.accuracy.method_only) == (2, 10)
    assert test.accuracy.difference == pytest.approx(0.2)
    assert test.accuracy.p_value == pytest.approx(binomtest(2, 12, 0.5).pvalue)
    assert test.accuracy.verdict == "significantly above at 0.05"
    no_vote = [methods[0], methods[3]]
    assert assess(labels, no_vote, 2, count=1000, seed=0)[1].against_vote == []


def test_multi_class_auc_is_compared_by_paired_bootstrap() -> None:
    rng = np.random.default_rng(2)
    labels = np.arange(45) % 3
    probs = [rng.dirichlet(np.ones(3), 45) + np.eye(3)[labels] * w for w in (0.2, 1.0)]
    probs = [p / p.sum(axis=1, keepdims=True) for p in probs]
    methods = [
        Scored("a", "specialist", probs[0].argmax(axis=1), probs[0]),
        Scored("b", "specialist", probs[1].argmax(axis=1), probs[1]),
        Scored("vote", "vote", ((probs[0] + probs[1]) / 2).argmax(axis=1), (probs[0] + probs[1]) / 2),
    ]
    _, stats = assess(labels, methods, 3, count=1000, seed=0)
    auc = stats.comparisons[0].auc
    assert auc is not None and auc.test.startswith("paired bootstrap")
    expected = roc_auc_score(labels, methods[2].scores, multi_class="ovr") - roc_auc_score(
        labels, probs[1], multi_class="ovr"
    )
    assert auc.difference == pytest.approx(expected, abs=1e-12)
    assert auc.ci is not None and auc.ci[0] <= auc.difference <= auc.ci[1]


def test_evaluate_refuses_fewer_than_a_thousand_resamples() -> None:
    with pytest.raises(DataError, match="at least 1000 resamples"):
        evaluate(None, "task", [np.zeros((4, 4))], np.array([0]), resamples=999)  # type: ignore[arg-type]


def test_chart_error_bars_reach_the_interval_ends() -> None:
    rows = [
        MethodResult("a", "specialist", 0.8, 0.75, 0.9, accuracy_ci=(0.7, 0.85)),
        MethodResult("b", "generalist", 0.6, 0.5, None),
    ]
    report = EvaluationReport("t", ("x", "y"), 10, [5, 5], 0, rows, {})
    assert error_bars(report, "accuracy") == pytest.approx(np.array([[0.1, 0.0], [0.05, 0.0]]))
    assert not error_bars(report, "auc").any()

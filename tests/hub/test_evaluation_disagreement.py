"""The disagreement subset of `gsco-hub evaluate`: hand-made predictions with answers worked out here.

Sixteen binary cases. Specialists A and B agree on cases 0-5 (both right) and disagree on
cases 6-15 (labels 0 on 6-10, 1 on 11-15): A is right on 6, 7, 8, 11, 12, 13 and B on the other
four. On the whole set A has 12/16 and B 10/16, so A is the reference. The vote says 0 on every
disagreement (right on 6-10), the consensus is right on all of them but 15.

By hand, on the ten disagreements:
- accuracy: A 6/10, B 4/10, vote 5/10, consensus 9/10;
- balanced accuracy (5 cases per class): A (3/5 + 3/5)/2 = 0.6, B 0.4, vote (5/5 + 0/5)/2 = 0.5,
  consensus (5/5 + 4/5)/2 = 0.9;
- McNemar against A: consensus b = 0 (A right, consensus wrong), c = 3 (cases 9, 10, 14):
  p = 2 P(X <= 0 | n=3) = 2/8 = 0.25; vote b = 3 (11, 12, 13), c = 2 (9, 10):
  p = min(1, 2 P(X <= 2 | n=5)) = min(1, 2 (1 + 5 + 10)/32) = 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gsco_common.errors import DataError
from hub.evaluation import disagreement
from hub.evaluation.evaluate import EvaluationReport, MethodResult
from hub.evaluation.report import disagreement_markdown, write_outputs
from hub.evaluation.significance import Scored, assess

LABELS = np.array([0, 0, 0, 0, 1, 1] + [0] * 5 + [1] * 5)
A = np.array([0, 0, 0, 0, 1, 1] + [0, 0, 0, 1, 1] + [1, 1, 1, 0, 0])
B = np.where(np.arange(16) >= 6, 1 - A, A)
VOTE = np.array([0, 0, 0, 0, 1, 1] + [0] * 10)
CONSENSUS = np.array([0, 0, 0, 0, 1, 1] + [0] * 5 + [1, 1, 1, 1, 0])


def _methods(b: np.ndarray = B) -> list[Scored]:
    onehot = np.eye(2)
    return [
        Scored("A v1", "specialist", A, onehot[A]),
        Scored("B v1", "specialist", b, onehot[b]),
        Scored("specialists' vote", "vote", VOTE, onehot[VOTE]),
        Scored("consensus (no generalist)", "consensus", CONSENSUS, onehot[CONSENSUS]),
    ]


def test_the_subset_accuracies_and_mcnemar_p_values_are_the_hand_computed_ones() -> None:
    block = disagreement.analyse(LABELS, _methods(), 2, count=1000, seed=3)
    assert disagreement.disagreement_mask(_methods()).tolist() == [False] * 6 + [True] * 10
    three = np.array([[0, 0, 1, 1], [0, 1, 1, 0], [0, 0, 1, 1]])
    assert disagreement.labels_differ(three).tolist() == [False, True, False, True]
    assert (block.status, block.n, block.of, block.class_counts) == ("analysed", 10, 16, [5, 5])
    assert block.reference == "A v1" and "whole evaluation set" in block.reference_rule
    rows = {row.name: row for row in block.methods}
    assert [(r.n, r.correct, r.accuracy, r.balanced_accuracy) for r in rows.values()] == [
        (10, 6, 0.6, 0.6),
        (10, 4, 0.4, 0.4),
        (10, 5, 0.5, 0.5),
        (10, 9, 0.9, 0.9),
    ]
    vote, consensus = (c.accuracy for c in block.comparisons)
    assert [c.kind for c in block.comparisons] == ["vote", "consensus"]
    assert (vote.reference_only, vote.method_only, vote.p_value) == (3, 2, 1.0)
    assert (consensus.reference_only, consensus.method_only) == (0, 3)
    assert consensus.p_value == pytest.approx(0.25, abs=1e-15)
    assert consensus.difference == pytest.approx(0.3) and vote.difference == pytest.approx(-0.1)
    assert consensus.verdict == "not significantly different"


def test_the_reference_is_the_main_tables() -> None:
    for b in (B, np.where(np.arange(16) >= 6, LABELS, A)):  # the second B is right on all ten
        block = disagreement.analyse(LABELS, _methods(b), 2, count=1000, seed=0)
        _, main = assess(LABELS, _methods(b), 2, count=1000, seed=0)
        assert block.reference == main.reference
        assert [c.reference for c in block.comparisons] == [main.reference] * 2
    assert block.reference == "B v1"


def test_subset_intervals_are_the_main_bootstrap_run_on_the_subset() -> None:
    block = disagreement.analyse(LABELS, _methods(), 2, count=1000, seed=7)
    rng = np.random.default_rng(7)
    correct = CONSENSUS[6:] == LABELS[6:]
    accs = [correct[rng.integers(0, 10, 10)].mean() for _ in range(1000)]
    assert block.methods[3].accuracy_ci == tuple(np.percentile(accs, [2.5, 97.5]))
    subset = [Scored(m.name, m.kind, m.predicted[6:], None) for m in _methods()]
    main, _ = assess(LABELS[6:], subset, 2, count=1000, seed=7)
    assert [row.accuracy_ci for row in block.methods] == [ci["accuracy_ci"] for ci in main]
    assert all(row.balanced_accuracy_ci is not None for row in block.methods)
    vote = block.comparisons[0].accuracy
    assert vote.ci is not None and vote.ci[0] <= vote.difference <= vote.ci[1]


def test_fewer_than_ten_disagreements_get_counts_and_mcnemar_but_no_intervals() -> None:
    labels, a = LABELS[:9], A[:9]  # cases 6, 7, 8 disagree; all three class 0, A right on them
    methods = [Scored(m.name, m.kind, m.predicted[:9], None) for m in _methods()]
    block = disagreement.analyse(labels, methods, 2, count=1000, seed=0)
    assert (block.status, block.n, block.class_counts) == (disagreement.TOO_FEW, 3, [3, 0])
    assert all(r.accuracy_ci is None and r.balanced_accuracy_ci is None for r in block.methods)
    assert [r.balanced_accuracy for r in block.methods] == [None] * 4  # one class only
    assert [r.correct for r in block.methods] == [3, 0, 3, 3] and a[6:9].tolist() == [0, 0, 0]
    assert all(c.accuracy.ci is None and c.accuracy.p_value == 1.0 for c in block.comparisons)
    text = disagreement_markdown(_report(block))
    assert "Only 3 disagreements (fewer than 10): too few for confidence intervals" in text
    assert "| A v1 | 3 | 3/3 = 1.000 | — | — | — | — | reference |" in text


def test_no_disagreement_is_said_not_left_out(tmp_path: Path) -> None:
    one = [m for m in _methods() if m.name != "B v1"]
    block = disagreement.analyse(LABELS, one, 2, count=1000, seed=0)
    assert (block.status, block.n, block.methods, block.comparisons) == ("no disagreement", 0, [], [])
    written = write_outputs(_report(block), tmp_path)
    data = json.loads(written["json"].read_text())["disagreement"]
    assert (data["status"], data["n"], data["of"], data["specialists"]) == ("no disagreement", 0, 16, 1)
    assert (
        "Where the specialists disagree: no disagreement; the served specialists gave the same label "
        "on all 16 cases (only one specialist is served)."
    ) in written["markdown"].read_text()


def test_evaluation_json_and_md_carry_the_block(tmp_path: Path) -> None:
    block = disagreement.analyse(LABELS, _methods(), 2, count=1000, seed=0)
    written = write_outputs(_report(block), tmp_path)
    data = json.loads(written["json"].read_text())["disagreement"]
    assert data["subset"] == disagreement.SUBSET and data["n"] == 10
    assert [c["accuracy"]["p_value"] for c in data["comparisons"]] == [1.0, 0.25]
    text = written["markdown"].read_text()
    assert f"Where the specialists disagree: {disagreement.SUBSET}, 10 of 16 cases (62.5 %)" in text
    assert "Reference: A v1 (the best single specialist chosen on the whole evaluation set, the main" in text
    consensus = next(line for line in text.splitlines() if line.startswith("| consensus"))
    assert (
        "| 10 | 9/10 = 0.900 [" in consensus and "| 0 / 3 | 0.25 | not significantly different |" in consensus
    )


def _report(block: disagreement.Disagreement) -> EvaluationReport:
    rows = [MethodResult("A v1", "specialist", 0.75, 0.75, None)]
    return EvaluationReport("t", ("x", "y"), 16, [9, 7], 0, rows, {}, disagreement=block)


def test_a_named_reference_replaces_the_best_and_every_other_specialist_is_compared() -> None:
    # B (10/16) is named although A (12/16) is better: A is compared with B like the vote and
    # the consensus. On the whole set A is right only on 6, 7, 8, 11, 12, 13 and B only on 9, 10,
    # 14, 15: McNemar b = 4, c = 6, p = 2 P(X <= 4 | n=10) = 2 * 386/1024.
    _, main = assess(LABELS, _methods(), 2, count=1000, seed=0, reference="B v1")
    assert main.reference == "B v1" and main.reference_rule.startswith("named before the evaluation")
    assert [(c.method, c.reference) for c in main.comparisons] == [
        ("A v1", "B v1"),
        ("specialists' vote", "B v1"),
        ("consensus (no generalist)", "B v1"),
    ]
    a = main.comparisons[0].accuracy
    assert (a.reference_only, a.method_only) == (4, 6)
    assert a.difference == pytest.approx(2 / 16) and a.p_value == pytest.approx(2 * 386 / 1024)
    block = disagreement.analyse(LABELS, _methods(), 2, count=1000, seed=0, named_reference="B v1")
    assert block.reference == "B v1" and block.reference_rule.startswith("the specialist named before")
    # B is right on 9, 10, 14, 15 and the consensus on all but 15: b = 1 (case 15), c = 6
    consensus = block.comparisons[1].accuracy
    assert (consensus.reference_only, consensus.method_only) == (1, 6)
    assert consensus.p_value == pytest.approx(2 * (1 + 7) / 2**7)  # 2 P(X <= 1 | n=7)


def test_a_reference_that_is_not_a_served_specialist_is_refused_with_the_served_names() -> None:
    for named in ("C v1", "specialists' vote"):
        with pytest.raises(DataError, match=r"no served specialist is named .*served: A v1, B v1"):
            assess(LABELS, _methods(), 2, count=1000, seed=0, reference=named)

"""The arbiter's bar over studies: every distinct evaluation once, and the counts (fast: no training)."""

from __future__ import annotations

from typing import Any

from hub.evaluation.significance import NAMED_REFERENCE_RULE
from hub.study.bar import bar_counts, bar_lines, bar_rows

CONSENSUS = "consensus (no generalist)"
SITE = {"name": "site-a", "seed": 0, "images": 30, "class_counts": [15, 15], "val": {"auc": 0.8}}


def _arm(
    consensus: float,
    best: float,
    vote: float,
    p: float,
    subset: tuple[int, int, int] | None,
    vote_p: float | None = None,
) -> dict:
    """One evaluation's scores; ``subset``: (consensus right, best right, n) where specialists disagree.

    ``p`` and ``vote_p``: the consensus' McNemar p against the best specialist and the vote.
    """
    disagreement: dict[str, Any] = {"status": "no disagreement"}
    if subset is not None:
        right, best_right, n = subset
        disagreement = {
            "status": "analysed",
            "n": n,
            "reference": "A v1",
            "methods": [
                {"name": "A v1", "kind": "specialist", "correct": best_right},
                {"name": CONSENSUS, "kind": "consensus", "correct": right},
            ],
            "comparisons": [{"method": CONSENSUS, "accuracy": {"p_value": 0.5}}],
        }
    return {
        "methods": [
            {"name": "A v1", "kind": "specialist", "accuracy": best},
            {"name": "B v1", "kind": "specialist", "accuracy": best - 0.1},
            {"name": "specialists' vote", "kind": "vote", "accuracy": vote},
            {"name": CONSENSUS, "kind": "consensus", "accuracy": consensus},
        ],
        "statistics": {
            "reference": "A v1",
            "comparisons": [{"method": CONSENSUS, "accuracy": {"p_value": p}}],
            "against_vote": []
            if vote_p is None
            else [{"method": CONSENSUS, "accuracy": {"p_value": vote_p}}],
        },
        "disagreement": disagreement,
    }


def _facts(scores: dict[str, Any]) -> dict[str, Any]:
    library = {"dataset": "syn", "range": [0.5, 1.0], "source_digest": "sha256:differs-per-study"}
    return {**scores, "evaluation_n": 100, "library": library, "evaluation": {"split": "val"}}


def _single(study: str, main: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    site = {**SITE, "shard": {"images": 30, "class_counts": [15, 15]}, "training_set_digest": study}
    site.pop("images"), site.pop("class_counts")
    return {
        "study": study,
        "seed": 0,
        "sites": [site],
        **_facts(main),
        "variants": [{"name": "v", **_facts(variant)}],
    }


def _repeated(study: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    repeats = [
        {"seed": i, "sites": [{**SITE, "seed": 100 * i, "training_set_digest": study}]}
        for i in range(len(runs))
    ]
    return {"study": study, "repeats": repeats, **_facts(runs[0]), "per_repeat": runs, "variants": []}


def test_every_distinct_evaluation_is_listed_once_and_counted() -> None:
    first = _single(
        "a",
        _arm(0.90, 0.92, vote=0.91, p=0.01, subset=(10, 12, 20)),  # significantly below the best
        _arm(0.95, 0.93, vote=0.95, p=0.40, subset=(8, 6, 10), vote_p=1.0),
    )
    again = _arm(0.90, 0.92, vote=0.91, p=0.01, subset=(10, 12, 20))  # repeat 1 = study a's main arm
    seeds = _repeated("b", [again, _arm(0.90, 0.90, vote=0.92, p=1.0, subset=None, vote_p=0.03)])
    recipe = _repeated("c", [_arm(0.5, 0.9, vote=0.9, p=0.001, subset=None)])
    recipe["statistics"] = {**recipe["statistics"], "reference_rule": NAMED_REFERENCE_RULE}
    rows, repeated = bar_rows([first, seeds, recipe])
    assert [r.evaluation for r in rows] == ["a / main", "a / v", "b / main / repeat 2"]
    assert repeated == ["b / main / repeat 1"]
    assert [r.significantly_below for r in rows] == [True, False, False]
    lines = bar_lines([first, seeds, recipe])
    assert [r.significantly_below_vote for r in rows] == [False, False, True]
    assert (
        lines[2] == "| a / main | 100 | 0.900 | 0.920 | 0.910 | -2.0 (0.01) | -1.0 | 10 / 12 of 20, p 0.5 |"
    )
    assert lines[4] == "| b / main / repeat 2 | 100 | 0.900 | 0.900 | 0.920 | +0.0 (1) | -2.0 (0.03) | — |"
    assert lines[6] == (
        "Over 3 distinct evaluations, the consensus was significantly below the best specialist (McNemar "
        "p < 0.05) in 1. It was below the plain vote in 2 of 3 (level in 1), significantly in 1 of the 2 "
        "tested against the vote. Where the specialists disagree (2 evaluations with such images), it was "
        "above the best specialist in 1, level in 0 and below in 1 (significantly below in 0). Counted "
        "once, as the same specialists, library and images appear earlier: b / main / repeat 1."
    )
    # the counts over a part of the rows (the docs count the fresh draws alone)
    assert bar_counts(rows[2:]) == (
        "Over 1 distinct evaluations, the consensus was significantly below the best specialist (McNemar "
        "p < 0.05) in 0. It was below the plain vote in 1 of 1 (level in 0), significantly in 1 of the 1 "
        "tested against the vote. Where the specialists disagree (0 evaluations with such images), it was "
        "above the best specialist in 0, level in 0 and below in 0 (significantly below in 0)."
    )


def test_no_study_with_a_consensus_gives_no_section() -> None:
    recipe = _repeated("c", [_arm(0.5, 0.9, vote=0.9, p=0.001, subset=None)])
    recipe["statistics"] = {**recipe["statistics"], "reference_rule": NAMED_REFERENCE_RULE}
    assert bar_lines([recipe]) == []

"""The arbiter's bar over studies: every distinct evaluation once, and the counts (fast: no training)."""

from __future__ import annotations

from hub.evaluation.significance import NAMED_REFERENCE_RULE
from hub.study.bar import bar_counts, bar_lines, bar_rows
from tests.hub.study.results import arm, repeated_study, single_study


def test_every_distinct_evaluation_is_listed_once_and_counted() -> None:
    first = single_study(
        "a",
        arm(0.90, 0.92, vote=0.91, p=0.01, subset=(10, 12, 20)),  # significantly below the best
        arm(0.95, 0.93, vote=0.95, p=0.40, subset=(8, 6, 10), vote_p=1.0),
    )
    again = arm(0.90, 0.92, vote=0.91, p=0.01, subset=(10, 12, 20))  # repeat 1 = study a's main arm
    seeds = repeated_study("b", [again, arm(0.90, 0.90, vote=0.92, p=1.0, subset=None, vote_p=0.03)])
    recipe = repeated_study("c", [arm(0.5, 0.9, vote=0.9, p=0.001, subset=None)])
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
    recipe = repeated_study("c", [arm(0.5, 0.9, vote=0.9, p=0.001, subset=None)])
    recipe["statistics"] = {**recipe["statistics"], "reference_rule": NAMED_REFERENCE_RULE}
    assert bar_lines([recipe]) == []

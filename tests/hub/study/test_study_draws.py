"""The bar and the biased drop counted per draw (a task and shuffle seed), with a sign test."""

from __future__ import annotations

from hub.study.bar import bar_rows
from hub.study.draws import (
    DrawTally,
    Losses,
    against_vote,
    draw_counts,
    drop_gaps,
    drop_gaps_by_arm,
    losses_by_arm,
    tally,
    where_specialists_disagree,
)
from tests.hub.study.results import arm, repeated_study, single_study

# Draw ("t", 0): study a's main arm (vote -1 image, split -2) and its variant (vote 0, split +2);
# study b's repeat 1 is a's main arm again (counted once). Draw ("t", 1): b's repeat 2 (+3, +2).
A_MAIN = arm(0.90, 0.92, vote=0.91, p=0.5, subset=(10, 12, 20))
STUDY_A = single_study("a", A_MAIN, arm(0.95, 0.95, vote=0.95, p=1.0, subset=(8, 6, 10)))
STUDY_B = repeated_study("b", [A_MAIN, arm(0.93, 0.92, vote=0.90, p=0.5, subset=(12, 10, 20))])
# Biased twin of b: repeat 1 loses 1 image for the consensus and 3 for the vote (+2); repeat 2
# loses 3 for the consensus and none for the vote (-3); repeat 3 has no twin run with its seeds.
BIASED = repeated_study(
    "x",
    [
        arm(0.89, 0.92, vote=0.88, p=0.5, subset=None),
        arm(0.90, 0.92, vote=0.90, p=0.5, subset=None),
        arm(0.50, 0.92, vote=0.99, p=0.5, subset=None),
    ],
    compare_with="b",
    class_counts=(5, 25),
)


def test_each_draw_sums_its_distinct_evaluations() -> None:
    rows, repeated = bar_rows([STUDY_A, STUDY_B])
    assert repeated == ["b / main / repeat 1"]
    assert [r.draw for r in rows] == [("t", 0), ("t", 0), ("t", 1)]
    # Per evaluation the vote count would be 1 ahead, 1 level, 1 behind; per draw -1 and +3.
    assert against_vote(rows) == DrawTally(ahead=1, level=0, behind=1)
    assert where_specialists_disagree(rows) == DrawTally(ahead=1, level=1, behind=0)


def test_biased_drop_pairs_runs_with_the_same_arm_and_seeds() -> None:
    results = {"a": STUDY_A, "b": STUDY_B, "x": BIASED}
    assert drop_gaps(results) == [(("t", 0), 2), (("t", 1), -3)]
    assert drop_gaps({"a": STUDY_A, "x": BIASED}) == []  # its twin is not among the results
    assert tally(drop_gaps(results)) == DrawTally(ahead=1, level=0, behind=1)


def test_the_sign_test_counts_draws_not_evaluations() -> None:
    six_ahead = tally([(("t", seed), 1) for seed in range(6)])
    assert six_ahead == DrawTally(ahead=6, level=0, behind=0)
    assert six_ahead.p_value == 2 / 64
    assert tally([(("t", 0), 1)] * 6).p_value == 1.0  # one draw, however many evaluations


def test_paragraph() -> None:
    rows, _ = bar_rows([STUDY_A, STUDY_B])
    assert draw_counts(rows, {"a": STUDY_A, "b": STUDY_B, "x": BIASED}, lead="Per draw") == (
        "Per draw: against the plain vote the consensus was ahead in 1, level in 0 and behind in 1 of 2 "
        "draws (sign test p 1); where the specialists disagree, against the best specialist, ahead in 1, "
        "level in 1 and behind in 0 of 2 draws (sign test p 1). Biased specialist against its unbiased "
        "twin, images the vote lost minus those the consensus lost (same arms and seeds in both): the "
        "consensus was ahead in 1, level in 0 and behind in 1 of 2 draws (sign test p 1). Images each "
        "method lost from twin to biased run, summed over the pairs (negative: gained; described, not "
        "tested, and first counted after every biased study had run): in the main arm the vote 3 (lost "
        "in 1 and gained in 0 of 2 pairs), the consensus 4 (lost in 2 and gained in 0 of 2 pairs)."
    )
    assert draw_counts(rows, {"a": STUDY_A, "b": STUDY_B}, lead="Per draw").endswith("(sign test p 1).")
    assert "Biased" not in draw_counts(rows, {"a": STUDY_A, "b": STUDY_B}, lead="Per draw")


def test_the_biased_drop_is_also_counted_each_arm_alone() -> None:
    # arm v of the twin: as b's main arm; of the biased run: repeat 1 keeps the consensus and loses
    # 6 images for the vote (+6), repeat 2 loses nothing for either (level), repeat 3 has no twin
    twin = repeated_study("b", STUDY_B["per_repeat"], variant=STUDY_B["per_repeat"])
    biased = repeated_study(
        "x",
        BIASED["per_repeat"],
        compare_with="b",
        class_counts=(5, 25),
        variant=[
            arm(0.90, 0.92, vote=0.85, p=0.5, subset=None),
            *STUDY_B["per_repeat"][1:],
            BIASED["per_repeat"][2],
        ],
    )
    results = {"b": twin, "x": biased}
    assert drop_gaps_by_arm(results) == {
        "main": [(("t", 0), 2), (("t", 1), -3)],
        "v": [(("t", 0), 6), (("t", 1), 0)],
    }
    assert tally(drop_gaps(results)) == DrawTally(ahead=1, level=0, behind=1)  # +8 and -3
    rows, _ = bar_rows([twin])
    assert draw_counts(rows, results, lead="Per draw").endswith(
        " The same, each arm alone (a split first counted after every biased study had run): in the main "
        "arm ahead in 1, level in 0 and behind in 1 of 2 draws (sign test p 1); in the v arm ahead in 1, "
        "level in 1 and behind in 0 of 2 draws (sign test p 1). Images each method lost from twin to "
        "biased run, summed over the pairs (negative: gained; described, not tested, and first counted "
        "after every biased study had run): in the main arm the vote 3 (lost in 1 and gained in 0 of 2 "
        "pairs), the consensus 4 (lost in 2 and gained in 0 of 2 pairs); in the v arm the vote 6 (lost "
        "in 1 and gained in 0 of 2 pairs), the consensus 0 (lost in 0 and gained in 0 of 2 pairs)."
    )


def test_each_methods_losses_are_summed_per_arm() -> None:
    # from b's repeats: the vote gains 4 images in repeat 1 and keeps its count in repeat 2; the
    # consensus loses 1 and 3
    biased = repeated_study(
        "x",
        [arm(0.89, 0.92, vote=0.95, p=0.5, subset=None), arm(0.90, 0.92, vote=0.90, p=0.5, subset=None)],
        compare_with="b",
        class_counts=(5, 25),
    )
    results = {"b": STUDY_B, "x": biased}
    assert losses_by_arm(results, "vote") == {"main": Losses(total=-4, lost_in=0, gained_in=1, pairs=2)}
    assert losses_by_arm(results, "consensus") == {"main": Losses(total=4, lost_in=2, gained_in=0, pairs=2)}
    assert losses_by_arm({"x": biased}, "vote") == {}  # no twin among the results
    assert (
        Losses(total=-4, lost_in=0, gained_in=1, pairs=2).text()
        == "-4 (lost in 0 and gained in 1 of 2 pairs)"
    )

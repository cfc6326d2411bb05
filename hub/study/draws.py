"""The bar and the biased-specialist drop counted per draw: one unit per draw of shards and seeds.

The evaluations of one draw (one task and shuffle seed: the same shards, mostly the same trained
specialists, overlapping images) are not independent of each other, so counts over evaluations
overstate the evidence. Here every draw is one unit. Its score is a number of images, summed
over the draw's distinct evaluations:

- against the plain vote: images the consensus got right minus those the vote got right;
- where the specialists disagree: the same against the best specialist;
- biased drop: how many more images the vote lost than the consensus did, from the unbiased
  twin to the biased study, over the arms run with the same seeds in both.

An exact two-sided sign test over the draws with a non-zero score asks whether the consensus
comes out ahead as often as behind. For the biased drop each method's own losses are also summed
per arm (:func:`losses_by_arm`): the gap alone cannot tell a consensus that lost more from a vote
that gained, which is what a site skewed toward the evaluation's majority class gives the vote.
Draws of different seeds still score on the images of one split, so the test is about training
draws on those images, not about other images.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.evaluation.statistics import binomial_two_sided
from hub.study.bar import BarRow, Draw, Evaluation, evaluations
from hub.study.facts import baseline_name, method_row


@dataclass(frozen=True)
class DrawTally:
    """Draws where the consensus came out ahead, level and behind."""

    ahead: int
    level: int
    behind: int

    @property
    def p_value(self) -> float:
        """Exact two-sided sign test over the draws that are not level."""
        return binomial_two_sided(self.ahead, self.ahead + self.behind)

    def text(self) -> str:
        return (
            f"ahead in {self.ahead}, level in {self.level} and behind in {self.behind} of "
            f"{self.ahead + self.level + self.behind} draws (sign test p {self.p_value:.2g})"
        )


def tally(scores: Iterable[tuple[Draw, int]]) -> DrawTally:
    """Sum each draw's scores; count the draws above, at and below zero."""
    sums: dict[Draw, int] = defaultdict(int)
    for draw, score in scores:
        sums[draw] += score
    values = list(sums.values())
    return DrawTally(sum(v > 0 for v in values), sum(v == 0 for v in values), sum(v < 0 for v in values))


def _images(accuracy: float, n: int) -> int:
    return round(accuracy * n)


def against_vote(rows: Sequence[BarRow]) -> DrawTally:
    """Per draw: images the consensus got right minus those the plain vote got right."""
    return tally(
        (r.draw, _images(r.consensus, r.n) - _images(r.vote, r.n)) for r in rows if r.vote is not None
    )


def where_specialists_disagree(rows: Sequence[BarRow]) -> DrawTally:
    """Per draw: on the images where the specialists disagree, the consensus' right minus the best's."""
    return tally((r.draw, r.subset.consensus - r.subset.best) for r in rows if r.subset is not None)


def _right(found: Evaluation, kind: str) -> int | None:
    row = method_row(found.scores["methods"], kind)
    return None if row is None else _images(row["accuracy"], found.n)


def _lost(twin: Evaluation, biased: Evaluation, kind: str) -> int | None:
    before, after = _right(twin, kind), _right(biased, kind)
    return None if before is None or after is None else before - after


def _drop_gap(twin: Evaluation, biased: Evaluation) -> int | None:
    """Images the vote lost minus those the consensus lost, from ``twin`` to ``biased``."""
    consensus, vote = _lost(twin, biased, "consensus"), _lost(twin, biased, "vote")
    return None if consensus is None or vote is None else vote - consensus


def _twin_pairs(results: Mapping[str, Mapping[str, Any]]) -> Iterator[tuple[Evaluation, Evaluation]]:
    """Every distinct pair of a biased study's evaluation and its twin's with the same arm and seeds.

    ``results`` maps study names to their study.json; a study whose twin (``compare_with``) is
    not among them is left out. Pairs are ``(twin, biased)``.
    """
    seen: set[tuple[str, str]] = set()
    for result in results.values():
        twin_name = baseline_name(result)
        if twin_name is None or twin_name not in results:
            continue
        twins = {(e.arm, e.seeds): e for e in evaluations(results[twin_name])}
        for biased in evaluations(result):
            twin = twins.get((biased.arm, biased.seeds))
            if twin is None or (twin.identity, biased.identity) in seen:
                continue
            seen.add((twin.identity, biased.identity))
            yield twin, biased


def drop_gaps_by_arm(results: Mapping[str, Mapping[str, Any]]) -> dict[str, list[tuple[Draw, int]]]:
    """By arm, :func:`_drop_gap` of every pair of :func:`_twin_pairs`, with the biased run's draw."""
    gaps: dict[str, list[tuple[Draw, int]]] = defaultdict(list)
    for twin, biased in _twin_pairs(results):
        if (gap := _drop_gap(twin, biased)) is not None:
            gaps[biased.arm].append((biased.draw, gap))
    return dict(gaps)


@dataclass(frozen=True)
class Losses:
    """Images one method lost from twin to biased run, over the pairs of one arm (negative: gained)."""

    total: int
    lost_in: int
    gained_in: int
    pairs: int

    def text(self) -> str:
        return f"{self.total} (lost in {self.lost_in} and gained in {self.gained_in} of {self.pairs} pairs)"


def losses_by_arm(results: Mapping[str, Mapping[str, Any]], kind: str) -> dict[str, Losses]:
    """By arm, the images method ``kind`` lost from twin to biased run, summed over the pairs."""
    lost: dict[str, list[int]] = defaultdict(list)
    for twin, biased in _twin_pairs(results):
        if (count := _lost(twin, biased, kind)) is not None:
            lost[biased.arm].append(count)
    return {
        arm: Losses(sum(counts), sum(c > 0 for c in counts), sum(c < 0 for c in counts), len(counts))
        for arm, counts in lost.items()
    }


def _together(by_arm: Mapping[str, list[tuple[Draw, int]]]) -> list[tuple[Draw, int]]:
    return [gap for gaps in by_arm.values() for gap in gaps]


def drop_gaps(results: Mapping[str, Mapping[str, Any]]) -> list[tuple[Draw, int]]:
    """The pairs of :func:`drop_gaps_by_arm`, every arm together."""
    return _together(drop_gaps_by_arm(results))


EXPLAINED = (
    "Counted per draw (a task and a shuffle seed: one draw's evaluations share shards, specialists "
    "and images, so each draw counts once; it scores the images the consensus got right more than "
    "the other method, summed over its distinct evaluations; draws "
    "still score on shared evaluation images, most of them on the one dev `val` split, so the test "
    "is about training draws on these images, not about other images)"
)
AFTERWARDS = "Per draw (counted after the runs, not part of what was registered)"


def draw_counts(
    rows: Sequence[BarRow], results: Mapping[str, Mapping[str, Any]], lead: str = EXPLAINED
) -> str:
    """The paragraph: the bar over ``rows`` and the biased drop over ``results``, one unit per draw."""
    text = (
        f"{lead}: against the plain vote the consensus was {against_vote(rows).text()}; where the "
        f"specialists disagree, against the best specialist, {where_specialists_disagree(rows).text()}."
    )
    by_arm = drop_gaps_by_arm(results)
    if gaps := _together(by_arm):
        text += (
            " Biased specialist against its unbiased twin, images the vote lost minus those the "
            f"consensus lost (same arms and seeds in both): the consensus was {tally(gaps).text()}."
        )
    if len(by_arm) > 1:
        arms = "; ".join(f"in the {arm} arm {tally(gaps).text()}" for arm, gaps in by_arm.items())
        text += f" The same, each arm alone (a split first counted after every biased study had run): {arms}."
    if by_arm:
        vote, consensus = losses_by_arm(results, "vote"), losses_by_arm(results, "consensus")
        arms = "; ".join(
            f"in the {arm} arm the vote {vote[arm].text()}, the consensus {consensus[arm].text()}"
            for arm in by_arm
        )
        text += (
            " Images each method lost from twin to biased run, summed over the pairs (negative: "
            f"gained; described, not tested, and first counted after every biased study had run): {arms}."
        )
    return text

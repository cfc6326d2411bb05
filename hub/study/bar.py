"""The consensus arbiter's bar, over every evaluation of every study: one table, counted once each.

The bar (never significantly below the best single specialist, above it where the specialists
disagree, not below the plain vote) is judged per evaluation in each study's own report; this
gathers them. An evaluation is one arm (the main one or a variant) in one repeat. Two studies
that ran the same specialists (the same training-set digests) with the same library and
evaluation set under the same arm name (e.g. a study and repeat 1 of its seeds twin) hold the
same evaluation: it is listed and counted once. Studies with a named reference (recipe studies)
compare with that reference, not with the best specialist, and are left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.study.facts import best_specialist, method_row, paired, reference_name, subset_rows, subset_test

ALPHA = 0.05

Draw = tuple[str, int]
"""A task and a shuffle seed: the shards every site, library and evaluation of one run were cut from."""


@dataclass(frozen=True)
class Subset:
    """The consensus and the best specialist on the images where the specialists disagree."""

    n: int
    consensus: int
    best: int
    p_value: float | None


@dataclass(frozen=True)
class BarRow:
    """One evaluation: the consensus against the best specialist and the vote."""

    evaluation: str
    n: int
    consensus: float
    best: float
    vote: float | None
    p_value: float | None
    vote_p_value: float | None
    subset: Subset | None
    draw: Draw

    @property
    def significantly_below(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA and self.consensus < self.best

    @property
    def significantly_below_vote(self) -> bool:
        below = self.vote is not None and self.consensus < self.vote
        return below and self.vote_p_value is not None and self.vote_p_value < ALPHA


@dataclass(frozen=True)
class Evaluation:
    """One arm of one run of a study, as ``study.json`` records it."""

    label: str
    arm: str
    identity: str
    """What makes two evaluations the same: arm, library, evaluation set, seeds, specialists."""
    scores: Mapping[str, Any]
    n: int
    draw: Draw
    seeds: tuple[int, tuple[int, ...]]
    """The run's shuffle seed and its sites' training seeds."""


def _subset(arm: Mapping[str, Any]) -> Subset | None:
    block = arm.get("disagreement") or {}
    pair = None if block.get("status") in (None, "no disagreement") else subset_rows(arm)
    if pair is None:
        return None
    consensus, reference = pair
    test = subset_test(arm, consensus["name"]) or {}
    return Subset(block["n"], consensus["correct"], reference["correct"], test.get("p_value"))


def _row(found: Evaluation) -> BarRow | None:
    arm = found.scores
    consensus = method_row(arm["methods"], "consensus")
    if consensus is None:
        return None
    vote = method_row(arm["methods"], "vote")
    test = paired(arm, consensus["name"]) or {}
    vote_test = paired(arm, consensus["name"], against="against_vote") or {}
    return BarRow(
        found.label,
        found.n,
        consensus["accuracy"],
        best_specialist(arm["methods"])["accuracy"],
        None if vote is None else vote["accuracy"],
        test.get("p_value"),
        vote_test.get("p_value"),
        _subset(arm),
        found.draw,
    )


def _specialists(sites: Sequence[Mapping[str, Any]]) -> list[Any]:
    """What identifies the trained specialists: seeds, shard sizes and their validation scores.

    Not the training-set digests: they also cover the shard file's name, which each study sets.
    """
    return [[s["name"], s["seed"], s["images"], s["class_counts"], s["val"]] for s in sites]


def evaluations(result: Mapping[str, Any]) -> Iterator[Evaluation]:
    """Each evaluation of a study: every arm of every repeat."""
    arms = [("main", result), *((v["name"], v) for v in result.get("variants", []))]
    for name, arm in arms:
        library = {k: v for k, v in arm.get("library", {}).items() if "digest" not in k}
        place = [name, library, arm.get("evaluation")]
        if "per_repeat" not in arm:
            runs = [({**result, "sites": [{**s, **s["shard"]} for s in result["sites"]]}, arm)]
        else:
            runs = list(zip(result["repeats"], arm["per_repeat"], strict=True))
        for index, (run, scores) in enumerate(runs):
            seed, sites = run["seed"], _specialists(run["sites"])
            label = f"{result['study']} / {name}" + (f" / repeat {index + 1}" if "per_repeat" in arm else "")
            yield Evaluation(
                label=label,
                arm=name,
                identity=json.dumps([*place, seed, sites], sort_keys=True),
                scores=scores,
                n=arm["evaluation_n"],
                draw=(result["task"]["id"], seed),
                seeds=(seed, tuple(site["seed"] for site in run["sites"])),
            )


def bar_rows(results: Sequence[Mapping[str, Any]]) -> tuple[list[BarRow], list[str]]:
    """The distinct evaluations of ``results`` (study.json files, in order), and those left as repeats."""
    rows: list[BarRow] = []
    repeated: list[str] = []
    seen: set[str] = set()
    for result in results:
        if reference_name(result)[1] == "reference":
            continue
        for found in evaluations(result):
            if found.identity in seen:
                repeated.append(found.label)
                continue
            seen.add(found.identity)
            if (row := _row(found)) is not None:
                rows.append(row)
    return rows, repeated


def _subset_text(subset: Subset | None) -> str:
    if subset is None:
        return "—"
    p = "" if subset.p_value is None else f", p {subset.p_value:.2g}"
    return f"{subset.consensus} / {subset.best} of {subset.n}{p}"


def _difference(consensus: float, other: float | None, p_value: float | None) -> str:
    if other is None:
        return "—"
    return f"{100 * (consensus - other):+.1f}" + ("" if p_value is None else f" ({p_value:.2g})")


def bar_counts(rows: Sequence[BarRow], repeated: Sequence[str] = ()) -> str:
    """The counts the bar asks for over ``rows``, and the evaluations counted once (``repeated``)."""
    below = sum(r.significantly_below for r in rows)
    votes = [(r.consensus, r.vote) for r in rows if r.vote is not None]
    tested = sum(r.vote_p_value is not None for r in rows)
    subsets = [r.subset for r in rows if r.subset is not None]
    sig_below = sum(s.consensus < s.best and s.p_value is not None and s.p_value < ALPHA for s in subsets)
    counts = (
        f"Over {len(rows)} distinct evaluations, the consensus was significantly below the best "
        f"specialist (McNemar p < {ALPHA:g}) in {below}. It was below the plain vote in "
        f"{sum(c < v for c, v in votes)} of {len(votes)} (level in {sum(c == v for c, v in votes)}), "
        f"significantly in {sum(r.significantly_below_vote for r in rows)} of the {tested} tested "
        "against the vote. "
        f"Where the specialists disagree ({len(subsets)} evaluations with such images), it was above the "
        f"best specialist in {sum(s.consensus > s.best for s in subsets)}, level in "
        f"{sum(s.consensus == s.best for s in subsets)} and below in "
        f"{sum(s.consensus < s.best for s in subsets)} (significantly below in {sig_below})."
    )
    if repeated:
        counts += (
            " Counted once, as the same specialists, library and images appear earlier: "
            f"{', '.join(repeated)}."
        )
    return counts


def bar_lines(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """The table of every distinct evaluation and the counts the bar asks for."""
    rows, repeated = bar_rows(results)
    if not rows:
        return []
    table = [
        "| evaluation | images | consensus | best specialist | vote | consensus − best (McNemar p) "
        "| consensus − vote (McNemar p) | where specialists disagree: consensus / best, right of n |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        vote = "—" if r.vote is None else f"{r.vote:.3f}"
        table.append(
            f"| {r.evaluation} | {r.n} | {r.consensus:.3f} | {r.best:.3f} | {vote} | "
            f"{_difference(r.consensus, r.best, r.p_value)} | "
            f"{_difference(r.consensus, r.vote, r.vote_p_value)} | {_subset_text(r.subset)} |"
        )
    counts = bar_counts(rows, repeated)
    note = (
        "The best specialist is the most accurate on each evaluation set itself, which favours it; "
        "a variant's images overlap its main arm's (the balanced one is a subsample), so the rows "
        "of one study are not independent."
    )
    return [*table, "", counts, "", note]

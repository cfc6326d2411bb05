"""A study repeated with other seeds: every repeat's scores and the figures across repeats.

Each repeat is a whole run of the study (shards cut from another shuffle, sites trained with other
seeds, a fresh home); the intervals and paired tests stay those of each repeat's evaluation. Across
repeats, each method gets the mean and the sample standard deviation of its scores, and each
collaboration method the count of repeats in which the paired test (McNemar on accuracy, against
that repeat's best specialist) put it significantly below or above.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hub.study.facts import METRICS, best_specialist, paired, reference_name, subset_rows, subset_test

ALPHA = 0.05
BEST = "best specialist (of each repeat)"


def mean_sd(values: Sequence[float | None]) -> dict[str, Any] | None:
    """``{"mean", "sd", "n"}`` of the values given (None skipped); sd is the sample one (None for n < 2)."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    sd = statistics.stdev(present) if len(present) > 1 else None
    return {"mean": statistics.fmean(present), "sd": sd, "n": len(present)}


def _scores(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {metric: mean_sd([row.get(metric) for row in rows]) for metric, _ in METRICS}


def tally(tests: Iterable[Mapping[str, Any] | None]) -> dict[str, int]:
    """How many paired tests put the method significantly below / above its reference, or neither."""
    counts = {"below": 0, "above": 0, "not_significant": 0, "untested": 0}
    for test in tests:
        if test is None or test.get("p_value") is None or test.get("difference") is None:
            counts["untested"] += 1
        elif test["p_value"] >= ALPHA:
            counts["not_significant"] += 1
        else:
            counts["below" if test["difference"] < 0 else "above"] += 1
    return counts


def against_best(arms: Sequence[Mapping[str, Any]], method: str) -> dict[str, int]:
    """In how many repeats ``method`` was significantly below / above the best specialist (accuracy)."""
    return tally(paired(arm, method) for arm in arms)


def against_named_reference(arms: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Each other specialist against the study's named reference across repeats; None without one.

    Per specialist: its accuracy difference from the reference (mean ± sd, in the repeats that
    reported the paired test) and in how many repeats McNemar put it significantly below / above.
    """
    reference, what = reference_name(arms[0])
    if what != "reference":
        return None
    names = [m["name"] for m in arms[0]["methods"] if m["kind"] == "specialist" and m["name"] != reference]
    return {
        "reference": reference,
        "specialists": {
            name: {
                "difference": mean_sd([(paired(arm, name) or {}).get("difference") for arm in arms]),
                "counts": tally(paired(arm, name) for arm in arms),
            }
            for name in names
        },
    }


def disagreement(arms: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The disagreement subset across repeats (None unless every repeat's evaluation has one).

    Its size, the consensus' and the best specialist's accuracy on it (mean ± sd), and the repeats
    where McNemar on the subset put the consensus significantly below / above the best specialist.
    """
    blocks = [arm.get("disagreement") for arm in arms]
    if any(block is None for block in blocks):
        return None
    consensus = next((m["name"] for m in arms[0]["methods"] if m["kind"] == "consensus"), "")
    pairs = [subset_rows(arm) for arm in arms]
    return {
        "n": mean_sd([block["n"] for block in blocks]),
        "consensus": mean_sd([pair[0]["accuracy"] if pair else None for pair in pairs]),
        "best": mean_sd([pair[1]["accuracy"] if pair else None for pair in pairs]),
        "counts": tally(subset_test(arm, consensus) for arm in arms),
    }


def aggregate(arms: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The figures across repeats of one arm (``arms``: that arm's facts, one per repeat)."""
    names = [(m["name"], m["kind"]) for m in arms[0]["methods"]]
    methods = []
    for name, kind in names:
        rows = [m for arm in arms for m in arm["methods"] if m["name"] == name]
        methods.append({"name": name, "kind": kind, "repeats": len(rows), **_scores(rows)})
    best = [best_specialist(arm["methods"]) for arm in arms]
    methods.append({"name": BEST, "kind": "best_specialist", "repeats": len(best), **_scores(best)})
    named = against_named_reference(arms)
    return {
        "repeats": len(arms),
        "alpha": ALPHA,
        "test": "McNemar on accuracy, against "
        + ("the named reference" if named else "the best specialist of the same repeat"),
        "methods": methods,
        "against_best": {name: against_best(arms, name) for name, kind in names if kind != "specialist"},
        "disagreement": disagreement(arms),
        "against_reference": named,
    }


def _arm_repeat(index: int, arm: Mapping[str, Any]) -> dict[str, Any]:
    """One repeat's scores of one arm: methods with their CIs, the paired tests, the consensus' weights."""
    stats = arm.get("statistics") or {}
    return {
        "repeat": index + 1,
        "methods": arm["methods"],
        "statistics": {
            "reference": stats.get("reference"),
            "comparisons": stats.get("comparisons", []),
            "against_vote": stats.get("against_vote", []),
        },
        "consensus_weights": arm.get("consensus_weights", {}),
        "disagreement": arm.get("disagreement"),
    }


def _site_repeat(site: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("name", "seed", "model", "best_epoch", "val", "training_set_digest")
    return {
        **{key: site.get(key) for key in keys},
        "images": site["shard"]["images"],
        "class_counts": site["shard"]["class_counts"],
    }


def with_repeats(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The study's facts: the first repeat's at the top level, then every repeat and the aggregate.

    ``repeats`` lists each repeat's seeds and sites; the main arm and each variant get
    ``per_repeat`` (its scores in each repeat) and ``across_repeats`` (:func:`aggregate`).
    """
    first = dict(results[0])
    first["repeats"] = [
        {
            "repeat": i + 1,
            "seed": r["seed"],
            "sites": [_site_repeat(s) for s in r["sites"]],
            "seconds": round(sum(r["seconds_per_step"].values()), 1),
        }
        for i, r in enumerate(results)
    ]
    first["per_repeat"] = [_arm_repeat(i, r) for i, r in enumerate(results)]
    first["across_repeats"] = aggregate(results)
    variants = []
    for v, variant in enumerate(first["variants"]):
        arms = [r["variants"][v] for r in results]
        variants.append(
            {
                **variant,
                "per_repeat": [_arm_repeat(i, a) for i, a in enumerate(arms)],
                "across_repeats": aggregate(arms),
            }
        )
    first["variants"] = variants
    return first

"""One study against another of the same design (``compare_with``): the accuracy drop per method.

A biased-specialist study names its unbiased twin; the report states whether the consensus' drop
is smaller than the majority vote's (and, when both were repeated with the same seeds, in how
many repeats it was) and how much of the consensus' weight rests on the skewed site in each. A
variant (another library or evaluation set for the same specialists) is compared with the twin's
variant of the same name, when the twin has one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gsco_common.ids import version_key
from hub.study.facts import best_specialist, method_row
from hub.study.wording import points

COLLABORATION = ("consensus", "vote", "rad")


def _accuracies(arm: Mapping[str, Any]) -> dict[str, float]:
    """The accuracy of the consensus, the vote, RAD and the best specialist in one arm's methods."""
    rows = {
        kind: row["accuracy"]
        for kind in COLLABORATION
        if (row := method_row(arm["methods"], kind)) is not None
    }
    return {**rows, "best specialist": best_specialist(arm["methods"])["accuracy"]}


def _mean_accuracies(arm: Mapping[str, Any]) -> dict[str, float]:
    """The same accuracies as :func:`_accuracies`, each the mean across the study's repeats."""
    means = {m["kind"].replace("_", " "): m["accuracy"] for m in arm["across_repeats"]["methods"]}
    return {
        kind: means[kind]["mean"]
        for kind in (*COLLABORATION, "best specialist")
        if means.get(kind) is not None
    }


def _drops(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, dict[str, float]]:
    return {
        kind: {"baseline": before[kind], "this": after[kind], "drop": round(before[kind] - after[kind], 6)}
        for kind in before
        if kind in after
    }


def _smaller_than_vote(rows: Mapping[str, Mapping[str, float]]) -> bool:
    return rows["consensus"]["drop"] < rows["vote"]["drop"]


def _seeds(study: Mapping[str, Any]) -> list[tuple[int, tuple[int, ...]]]:
    """Each repeat's shuffle seed and site seeds, in repeat order."""
    return [(r["seed"], tuple(site["seed"] for site in r["sites"])) for r in study["repeats"]]


def _same_seed_runs(
    baseline: Mapping[str, Any],
    result: Mapping[str, Any],
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """The repeats of arm ``before`` (of ``baseline``) and ``after`` (of ``result``) with the same seeds."""
    same = [x == y for x, y in zip(_seeds(baseline), _seeds(result), strict=False)]
    arms = zip(before["per_repeat"], after["per_repeat"], same, strict=False)
    return [(b, r) for b, r, paired in arms if paired]


def _paired_repeats(
    baseline: Mapping[str, Any],
    result: Mapping[str, Any],
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> dict[str, int]:
    """How many repeats ran with the same seeds in both studies; in how many the consensus dropped less.

    ``before`` and ``after`` are the arms compared, of ``baseline`` and ``result``.
    """
    pairs = [
        _drops(_accuracies(b), _accuracies(r)) for b, r in _same_seed_runs(baseline, result, before, after)
    ]
    smaller = sum(_smaller_than_vote(rows) for rows in pairs if {"consensus", "vote"} <= rows.keys())
    return {"paired": len(pairs), "consensus_drop_smaller": smaller}


def _arm(study: Mapping[str, Any], variant: str | None) -> Mapping[str, Any] | None:
    """The study's main arm (``variant`` None) or its variant of that name (None when it has none)."""
    if variant is None:
        return study
    return next((v for v in study.get("variants", []) if v["name"] == variant), None)


def compare(
    baseline: Mapping[str, Any], result: Mapping[str, Any], variant: str | None = None
) -> dict[str, Any] | None:
    """Accuracy drop of the consensus and the vote from ``baseline`` (same design, unbiased) to ``result``.

    ``variant`` compares that variant of both studies instead of their main arms; None when
    either study has no variant of that name. When both studies were repeated, the accuracies
    are the means across repeats, and ``repeats`` counts the repeats run with the same seeds in
    both and those of them where the consensus' drop was smaller than the vote's.
    """
    before, after = _arm(baseline, variant), _arm(result, variant)
    if before is None or after is None:
        return None
    if not ("across_repeats" in before and "across_repeats" in after):
        return {
            "baseline_study": baseline["study"],
            "accuracy": _drops(_accuracies(before), _accuracies(after)),
        }
    return {
        "baseline_study": baseline["study"],
        "accuracy": _drops(_mean_accuracies(before), _mean_accuracies(after)),
        "repeats": _paired_repeats(baseline, result, before, after),
    }


def _skewed_site_models(study: Mapping[str, Any]) -> dict[str, str]:
    """Site name -> model name of every site trained on a label-skewed shard."""
    return {site["name"]: site["model"] for site in study.get("sites", []) if site["shard"].get("label_skew")}


def _weight_share(weights: Mapping[str, Any], model: str) -> float | None:
    """The share of all the consensus' weights that rests on ``model``'s prediction and retrieval."""
    name, _, version = model.rpartition(" v")  # the study report's "NAME vVERSION"
    key = version_key(name, version)
    specialists, retrieval = weights.get("specialists", {}), weights.get("retrieval", {})
    total = sum(specialists.values()) + sum(retrieval.values())
    if key not in specialists or total <= 0:
        return None
    return (specialists[key] + retrieval.get(key, 0.0)) / total


def _shares(runs: Sequence[Mapping[str, Any]], model: str) -> list[float] | None:
    """The model's weight share in each run (None when a run's weights do not say)."""
    shares = [share for run in runs if (share := _weight_share(run["consensus_weights"], model)) is not None]
    return shares if len(shares) == len(runs) else None


def _percentages(shares: list[float]) -> str:
    texts = [f"{100 * share:.1f} %" for share in shares]
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} and {texts[-1]} (repeat by repeat)"


def skewed_weight_lines(
    result: Mapping[str, Any], baseline: Mapping[str, Any], variant: str | None = None
) -> list[str]:
    """How much of the consensus rests on each label-skewed site, here and in the unbiased twin.

    The drop compares with a study in which that site's specialist is a good one; a consensus
    that stops following it loses what it contributed there, so the weights say whether the
    consensus followed the skewed specialist, which the drop alone cannot.
    """
    before, after = _arm(baseline, variant), _arm(result, variant)
    if before is None or after is None:
        return []
    repeated = "per_repeat" in before and "per_repeat" in after
    lines = []
    for site, model in _skewed_site_models(result).items():
        here = _shares(after.get("per_repeat") or [after], model)
        there = _shares(before.get("per_repeat") or [before], model)
        if here is None or there is None:
            continue
        line = (
            f"Weight on {site} (trained on a label-skewed shard), its prediction and its retrieval as a "
            f"share of all the consensus' weights: {_percentages(here)}, against {_percentages(there)} "
            "in the unbiased study"
        )
        if repeated and (pairs := _same_seed_runs(baseline, result, before, after)):
            shares = [_shares([b, r], model) or [] for b, r in pairs]  # every run's share is known
            lower = sum(mine < theirs for theirs, mine in shares)
            line += f": lower in {lower} of {len(pairs)} repeats run with the same seeds"
        lines.append(line + ".")
    return lines


def comparison_lines(
    result: Mapping[str, Any], baseline: Mapping[str, Any] | None, variant: str | None = None
) -> list[str]:
    """The drop table and sentence for the main arm or ``variant``; none without a baseline to match."""
    comparison = None if baseline is None else compare(baseline, result, variant)
    if comparison is None:
        return []
    rows, repeats = comparison["accuracy"], comparison.get("repeats")
    which = "; mean accuracy across repeats" if repeats else ""
    against = f"the study `{comparison['baseline_study']}`"
    if variant is not None:
        against = f"the same variant (`{variant}`) of {against}"
    lines = [
        f"Accuracy against {against} (same design, no biased site{which}):",
        "",
        "| method | unbiased | this study | drop (negative: a gain) |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {k} | {r['baseline']:.3f} | {r['this']:.3f} | {points(r['drop'])} |" for k, r in rows.items()
    ]
    if "consensus" in rows and "vote" in rows:
        lines += [
            "",
            f"Accuracy changed by {points(-rows['consensus']['drop'])} for the consensus and by "
            f"{points(-rows['vote']['drop'])} for the majority vote: the collaboration's drop is "
            f"{'smaller' if _smaller_than_vote(rows) else 'NOT smaller'} than the vote's.",
        ]
        if repeats:
            lines[-1] += (
                f" Repeat by repeat, over the {repeats['paired']} repeats run with the same seeds in both "
                f"studies, it was smaller in {repeats['consensus_drop_smaller']}."
            )
    if baseline is not None and (weights := skewed_weight_lines(result, baseline, variant)):
        lines += ["", *weights]
    return lines

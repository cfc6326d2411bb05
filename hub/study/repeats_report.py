"""The markdown of a repeated study: mean ± sd per method, each repeat's row, and the verdicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.study.facts import METRICS, best_specialist, method_row, paired
from hub.study.wording import difference_text, mean_sd_text, points_mean_sd, value_text


def _counts_text(counts: Mapping[str, int] | None) -> str:
    if counts is None:
        return "—"
    return " / ".join(str(counts[key]) for key in ("below", "above", "not_significant", "untested"))


def _compared_with(across: Mapping[str, Any]) -> str:
    """What the paired tests across repeats compared with: the named reference or each repeat's best."""
    return "the reference" if across.get("against_reference") else "the best specialist"


def repeats_verdict(across: Mapping[str, Any]) -> str:
    """The consensus across repeats: mean ± sd against the others, and its significant losses and wins."""
    rows = {m["kind"]: m for m in across["methods"]}
    consensus = rows.get("consensus")
    if consensus is None:
        return "The evaluation has no consensus row."
    n = across["repeats"]
    text = (
        f"The consensus arbiter's accuracy was {mean_sd_text(consensus['accuracy'])} (mean ± sd over {n} "
        f"repeats) against {mean_sd_text(rows['best_specialist']['accuracy'])} for the best specialist of "
        "each repeat"
    )
    for kind, label in (("vote", "the majority vote"), ("rad", "RAD only")):
        if kind in rows:
            text += f", {mean_sd_text(rows[kind]['accuracy'])} for {label}"
    counts = across["against_best"][consensus["name"]]
    compared = _compared_with(across)
    text += (
        f"; the paired test (McNemar, p < {across['alpha']:g}) put it significantly below {compared} "
        f"in {counts['below']} of {n} repeats and significantly above it in {counts['above']}"
    )
    untested = f" (no paired test in {counts['untested']})" if counts["untested"] else ""
    text += untested + "."
    subset = across.get("disagreement")
    if subset and subset["consensus"] is not None and subset["best"] is not None:
        c = subset["counts"]
        text += (
            f" Where the specialists disagreed ({mean_sd_text(subset['n'], 1)} images per repeat), its "
            f"accuracy was {mean_sd_text(subset['consensus'])} against {mean_sd_text(subset['best'])} "
            f"for {compared}: significantly above it in {c['above']} of {n} repeats and below it in "
            f"{c['below']}."
        )
    return text


def reference_across_repeats(across: Mapping[str, Any]) -> str | None:
    """Each specialist against the named reference across repeats (a repeated recipe study); else None."""
    block = across.get("against_reference")
    if not block or not block["specialists"]:
        return None
    n = across["repeats"]
    parts = [
        f"{name} {points_mean_sd(row['difference'])}, significantly "
        f"above in {row['counts']['above']} of {n} repeats and below in {row['counts']['below']}"
        for name, row in block["specialists"].items()
    ]
    return (
        f"Accuracy against the reference ({block['reference']}), mean ± sd of the difference over the "
        f"repeats (McNemar, p < {across['alpha']:g}): " + "; ".join(parts) + "."
    )


def repeats_lines(result: Mapping[str, Any], arm: Mapping[str, Any], sub: str) -> list[str]:
    """Mean ± sd of every method across repeats, each repeat's row with its CIs, and the verdict."""
    across = arm.get("across_repeats")
    if not across:
        return []
    lines = [
        f"{sub} Across {across['repeats']} repeats (mean ± sd; the intervals are each repeat's)",
        "",
        "| method | ACC | macro-F1 | AUC | repeats below / above / not significantly different from / "
        f"untested against {_compared_with(across)} |",
        "|---|---:|---:|---:|---:|",
    ]
    specialists = (across.get("against_reference") or {}).get("specialists", {})
    for m in across["methods"]:
        cells = [mean_sd_text(m[metric]) for metric, _ in METRICS]
        counts = across["against_best"].get(m["name"]) or specialists.get(m["name"], {}).get("counts")
        lines.append(f"| {m['name']} | {' | '.join(cells)} | {_counts_text(counts)} |")
    collaboration = [m["name"] for m in arm["per_repeat"][0]["methods"] if m["kind"] != "specialist"]
    seeds = {r["repeat"]: r for r in result.get("repeats", [])}
    lines += [
        "",
        "| repeat | shuffle seed | site seeds | best specialist, ACC (95 % CI) | "
        + " | ".join(f"{name}, ACC (95 % CI)" for name in collaboration)
        + f" | consensus ΔACC vs {'reference' if across.get('against_reference') else 'best'}, points (CI), "
        "McNemar p |",
        "|---:|---:|---|---|" + "---:|" * (len(collaboration) + 1),
    ]
    for r in arm["per_repeat"]:
        info = seeds.get(r["repeat"], {})
        best = best_specialist(r["methods"])
        consensus = method_row(r["methods"], "consensus")
        cells = [
            str(r["repeat"]),
            str(info.get("seed", "—")),
            ", ".join(f"{s['name']} {s['seed']}" for s in info.get("sites", [])) or "—",
            f"{best['name']} {value_text(best, 'accuracy')}",
            *(value_text(m, "accuracy") for name in collaboration for m in r["methods"] if m["name"] == name),
            difference_text(paired(r, consensus["name"])) if consensus else "—",
        ]
        lines.append(f"| {' | '.join(cells)} |")
    named = reference_across_repeats(across)
    return [
        *lines,
        "",
        f"**Across repeats.** {repeats_verdict(across)}",
        "",
        *([f"**Against the reference across repeats.** {named}", ""] if named else []),
    ]

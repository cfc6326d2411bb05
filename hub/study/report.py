"""The study's own report, ``study.md``, rendered from ``study.json`` (:mod:`hub.study.facts`).

Everything in ``study.md`` and in the generated section of ``docs/results.md`` is a function of
``study.json`` alone, so both can be re-rendered, byte for byte, without retraining. Confidence
intervals and paired tests are shown when ``gsco-hub evaluate`` reported them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hub.evaluation.statistics import verdict as verdict_words
from hub.study.comparison import comparison_lines
from hub.study.environment import environment_line
from hub.study.facts import METRICS, method_row, paired, reference_name, subset_rows, subset_test
from hub.study.repeats_report import repeats_lines
from hub.study.spec import ShiftSpec
from hub.study.wording import difference_text, points, value_text


def verdict(arm: Mapping[str, Any]) -> str:
    """Where the consensus stands against the best specialist, the vote and RAD only (from the numbers)."""
    methods = arm["methods"]
    consensus, vote, rad = (
        method_row(methods, "consensus"),
        method_row(methods, "vote"),
        method_row(methods, "rad"),
    )
    if consensus is None:
        return "The evaluation has no consensus row."
    name, what = reference_name(arm)
    best = next(m for m in methods if m["name"] == name)
    acc = consensus["accuracy"]
    parts = [
        f"The consensus arbiter reached accuracy {acc:.3f} against {best['accuracy']:.3f} "
        f"for the {'best single specialist' if what == 'best specialist' else 'reference'} "
        f"({best['name']}): {points(acc - best['accuracy'])}."
    ]
    test = paired(arm, consensus["name"])
    if test is not None and test.get("p_value") is not None:
        p = test["p_value"]
        if p >= 0.05:
            parts.append(f"The paired test (McNemar) finds no significant difference (p = {p:.2g}).")
        else:
            side = "above" if acc > best["accuracy"] else "below"
            parts.append(f"The paired test (McNemar) puts it significantly {side} (p = {p:.2g}).")
    else:
        parts.append("No paired test was reported, so the difference is not shown to be more than chance.")
    for row, label in ((vote, "the specialists' majority vote"), (rad, "RAD only")):
        if row is not None:
            parts.append(f"Against {label} ({row['accuracy']:.3f}) it is {points(acc - row['accuracy'])}.")
    source = str(arm.get("consensus_weights", {}).get("source", "unknown"))
    parts.append(f"Consensus weights: {source}.")
    return " ".join(parts)


def against_reference(arm: Mapping[str, Any]) -> str | None:
    """Each other specialist against a named reference (a recipe study's baseline); None otherwise."""
    reference, what = reference_name(arm)
    if what != "reference":
        return None
    parts = []
    for m in arm["methods"]:
        test = paired(arm, m["name"]) if m["kind"] == "specialist" and m["name"] != reference else None
        if test is None or test.get("difference") is None or test.get("p_value") is None:
            continue
        finding = test.get("verdict") or verdict_words(test["difference"], test["p_value"])
        p = test["p_value"]
        parts.append(f"{m['name']} {points(test['difference'])} (McNemar p = {p:.2g}, {finding})")
    if not parts:
        return None
    return f"Accuracy against the reference ({reference}): " + "; ".join(parts) + "."


def method_table(arm: Mapping[str, Any]) -> list[str]:
    """Every method with its CIs and, where tested, its paired difference to the reference."""
    reference, what = reference_name(arm)
    versus = "best" if what == "best specialist" else "reference"
    lines = [
        "| method | ACC (95 % CI) | macro-F1 (95 % CI) | AUC (95 % CI) "
        f"| ΔACC vs {versus}, points (CI), McNemar p | ΔAUC vs {versus}, points (CI), p | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for m in arm["methods"]:
        name = f"{m['name']} ({what})" if m["name"] == reference else m["name"]
        cells = [value_text(m, metric) for metric, _ in METRICS]
        cells += [
            difference_text(paired(arm, m["name"], "accuracy")),
            difference_text(paired(arm, m["name"], "auc")),
        ]
        lines.append(f"| {name} | {' | '.join(cells)} | {m.get('note', '')} |")
    return lines


def _counts(labels: Sequence[str], counts: Sequence[int]) -> str:
    return ", ".join(f"{label} {count}" for label, count in zip(labels, counts, strict=True))


def _shard_text(shard: Mapping[str, Any], labels: Sequence[str]) -> str:
    skew = shard.get("label_skew") or {}
    start, stop = shard["range"]
    text = f"`{shard['dataset']}` {shard['split']} [{start:g}, {stop:g})"
    if skew:
        text += ", skewed to " + ", ".join(f"{k} {v:g}" for k, v in skew.items())
    return f"{text}: {shard['images']} ({_counts(labels, shard['class_counts'])})"


def site_table(result: Mapping[str, Any]) -> list[str]:
    labels = result["task"]["labels"]
    lines = [
        "| site | backbone | input | epochs | training shard | overrides | best epoch "
        "| val bal. acc. | val AUC |",
        "|---|---|---:|---:|---|---|---:|---:|---:|",
    ]
    for s in result["sites"]:
        overrides = ", ".join(f"{k}={v}" for k, v in s["training"].items()) or "—"
        val = s["val"]
        lines.append(
            f"| {s['name']} | {s['backbone']} | {s['image_size']} px | {s['epochs']} | "
            f"{_shard_text(s['shard'], labels)} | {overrides} | {s['best_epoch']} | "
            f"{val.get('balanced_accuracy', float('nan')):.3f} | {val.get('auc', float('nan')):.3f} |"
        )
    return lines


def provenance_lines(arm: Mapping[str, Any], labels: Sequence[str]) -> list[str]:
    lib, ev = arm["library"], arm["evaluation"]
    identity = ShiftSpec().model_dump(mode="json")
    shift = {k: v for k, v in ev["shift"].items() if v != identity[k]}
    same = lib["same_digest_as_training_of"]
    overlap = f"equal to the training-set digest of {', '.join(same)}" if same else "equal to no site's"
    shifted = f"simulated acquisition shift {json.dumps(shift, sort_keys=True)}" if shift else "no shift"
    return [
        f"- Case library ({lib['source']}): {_shard_text(lib, labels)}; import digest "
        f"`{str(lib['source_digest'])[:19]}…`, {overlap}.",
        f"- Evaluation: {_shard_text(ev, labels)}; {shifted}.",
    ]


def disagreement_verdict(arm: Mapping[str, Any]) -> str | None:
    """Whether the consensus is above the best specialist where the specialists disagree (None: no subset)."""
    block = arm.get("disagreement")
    if not block:
        return None
    if block["status"] == "no disagreement":
        if block.get("specialists", 2) < 2:
            return "Only one specialist was served: there is no disagreement subset."
        return (
            f"The specialists gave the same label on all {block['of']} images: there is no subset to judge."
        )
    pair = subset_rows(arm)
    if pair is None:
        return "The disagreement subset has no consensus or reference row."
    consensus, reference = pair
    acc, ref = consensus["accuracy"], reference["accuracy"]
    text = (
        f"On the {block['n']} of {block['of']} images where the specialists' labels differ, the consensus "
        f"arbiter was right on {consensus['correct']}, accuracy {value_text(consensus, 'accuracy')}, against "
        f"{reference['correct']}, {value_text(reference, 'accuracy')}, for the {reference_name(arm)[1]} "
        f"({reference['name']}): {points(acc - ref)}."
    )
    test = subset_test(arm, consensus["name"])
    if test is None or test.get("p_value") is None:
        return text + " No paired test was reported on the subset."
    p = test["p_value"]
    if p >= 0.05:
        return text + f" McNemar finds no significant difference (p = {p:.2g}): not shown to be above it."
    side = "above" if acc > ref else "below"
    return text + f" McNemar puts it significantly {side} (p = {p:.2g})."


def disagreement_table(arm: Mapping[str, Any]) -> list[str]:
    """Every method on the disagreement subset, with the collaboration rows' McNemar test."""
    block = arm.get("disagreement")
    if not block or block["status"] == "no disagreement":
        return []
    what = reference_name(arm)[1]
    versus = "best" if what == "best specialist" else "reference"
    lines = [
        "| method | right | ACC (95 % CI) | balanced ACC (95 % CI) "
        f"| ΔACC vs {versus}, points (CI), McNemar p |",
        "|---|---:|---:|---:|---:|",
    ]
    for m in block["methods"]:
        name = f"{m['name']} ({what})" if m["name"] == block["reference"] else m["name"]
        cells = [f"{m['correct']}/{m['n']}", value_text(m, "accuracy"), value_text(m, "balanced_accuracy")]
        lines.append(f"| {name} | {' | '.join(cells)} | {difference_text(subset_test(arm, m['name']))} |")
    return lines


def disagreement_lines(arm: Mapping[str, Any], labels: Sequence[str], sub: str) -> list[str]:
    """The disagreement subset's heading, table and verdict (nothing when the evaluation had none)."""
    sentence = disagreement_verdict(arm)
    if sentence is None:
        return []
    block = arm["disagreement"]
    size = f"{block['n']} of {block['of']} images: {_counts(labels, block['class_counts'])}"
    lines = [f"{sub} Where the specialists disagree ({size})", ""]
    if block["status"] not in ("analysed", "no disagreement"):
        lines += [f"Fewer than {block['min_cases_for_intervals']} images: no intervals, counts only.", ""]
    table = disagreement_table(arm)
    return [*lines, *([*table, ""] if table else []), f"**Where specialists disagree.** {sentence}", ""]


def _arm_markdown(result: Mapping[str, Any], arm: Mapping[str, Any], sub: str) -> list[str]:
    """Provenance, the method table and the verdict of one arm (and the figures across repeats)."""
    labels = result["task"]["labels"]
    n, counts = arm["evaluation_n"], arm["evaluation_class_counts"]
    which = f", repeat 1 of {len(arm['per_repeat'])}" if arm.get("per_repeat") else ""
    return [
        *provenance_lines(arm, labels),
        "",
        f"{sub} Methods on the evaluation set{which} ({n} images: {_counts(labels, counts)})",
        "",
        *method_table(arm),
        "",
        f"**Verdict{which}.** {verdict(arm)}",
        "",
        *([f"**Against the reference.** {text}", ""] if (text := against_reference(arm)) else []),
        *disagreement_lines(arm, labels, sub),
        *repeats_lines(result, arm, sub),
    ]


def _evidence(facts: Mapping[str, Any]) -> list[str]:
    lines = []
    if facts["evidence_for"]:
        lines += [f"**Evidence for:** {facts['evidence_for']}", ""]
    if facts["not_evidence_for"]:
        lines += [f"**Not evidence for:** {facts['not_evidence_for']}", ""]
    return lines


def study_markdown(
    result: Mapping[str, Any],
    baseline: Mapping[str, Any] | None = None,
    *,
    heading: str = "#",
    with_yaml: bool = True,
) -> str:
    """The study as Markdown; ``heading`` is the level of its title (sub-headings one deeper).

    ``baseline`` is the study.json named by ``compare_with``, when that study has been run.
    """
    sub = heading + "#"
    data = ", ".join(f"`{d['file']}` (sha256 {d['sha256'][:12]}…)" for d in result["datasets"].values())
    lines = [f"{heading} {result['title']}", ""]
    if result["description"]:
        lines += [result["description"], ""]
    lines += [f"Data: {data}.", ""]
    if (line := environment_line(result.get("environment"))) is not None:
        lines += [line, ""]
    lines += [*site_table(result), ""]
    lines += _arm_markdown(result, result, sub)
    extra = comparison_lines(result, baseline)
    lines += [*extra, ""] if extra else []
    lines += _evidence(result)
    for variant in result.get("variants", []):
        lines += [f"{heading} {variant['title']}", ""]
        if variant["description"]:
            lines += [variant["description"], ""]
        lines += _arm_markdown(result, variant, sub)
        extra = comparison_lines(result, baseline, variant["name"])
        lines += [*extra, ""] if extra else []
        lines += _evidence(variant)
    if with_yaml:
        lines += [f"{sub} Study file", "", "```yaml", result["spec_yaml"].rstrip(), "```", ""]
    return "\n".join(lines)


def write_study(result: Mapping[str, Any], out: Path, baseline: Mapping[str, Any] | None) -> dict[str, Path]:
    """``study.json`` and ``study.md`` in ``out`` (beside the evaluation's files)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"study_json": out / "study.json", "study_md": out / "study.md"}
    paths["study_json"].write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    paths["study_md"].write_text(study_markdown(result, baseline), encoding="utf-8")
    return paths

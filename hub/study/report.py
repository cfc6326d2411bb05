"""The study's own report: ``study.json`` (the facts) and ``study.md`` rendered from it.

Everything in ``study.md`` and in the generated section of ``docs/results.md`` is a function of
``study.json`` alone, so both can be re-rendered, byte for byte, without retraining. Confidence
intervals and paired tests are shown when ``gsco-hub evaluate`` reported them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hub.evaluation.significance import NAMED_REFERENCE_RULE
from hub.study.environment import environment, environment_line
from hub.study.spec import ShiftSpec, StudySpec

if TYPE_CHECKING:
    from hub.study.plan import Arm, StudyShards

METRICS = (("accuracy", "ACC"), ("macro_f1", "macro-F1"), ("auc", "AUC"))


def _shard_facts(shard: Any, num_classes: int) -> dict[str, Any]:
    return {
        **shard.spec.model_dump(mode="json"),
        "images": int(shard.indices.size),
        "class_counts": shard.class_counts(num_classes),
    }


def _arm_facts(
    arm: Arm, output: Mapping[str, Any], sites: Sequence[Mapping[str, Any]], num_classes: int
) -> dict[str, Any]:
    """The library's provenance, the evaluation set and every method's scores of one arm."""
    library, evaluation = output["library"], output["evaluation"]
    digest = library.get("source_digest")
    site = arm.library_spec.site
    return {
        "library": {
            "source": f"site {site}'s own training shard" if site else "disjoint shard",
            **_shard_facts(arm.library, num_classes),
            "source_digest": digest,
            "same_digest_as_training_of": [s["name"] for s in sites if s["training_set_digest"] == digest],
        },
        "evaluation": {
            **_shard_facts(arm.evaluation, num_classes),
            "shift": arm.evaluation_spec.shift.model_dump(mode="json"),
        },
        "methods": evaluation["methods"],
        "statistics": evaluation.get("statistics"),
        "disagreement": evaluation.get("disagreement"),
        "consensus_weights": evaluation.get("consensus_weights", {}),
        "notes": evaluation.get("notes", []),
        "evaluation_n": evaluation["n"],
        "evaluation_class_counts": evaluation["class_counts"],
    }


def study_result(
    spec: StudySpec,
    spec_text: str,
    shards: StudyShards,
    trained: Mapping[str, Mapping[str, Any]],
    outputs: Sequence[Mapping[str, Any]],
    dataset_digests: Mapping[str, str],
    timings: Mapping[str, float],
) -> dict[str, Any]:
    """The facts of one run (no paths: data sets by file name and content digest).

    The main arm's facts are top-level keys; each variant repeats them under ``variants``.
    """
    num_classes = len(spec.task.labels)
    sites = [
        {
            "name": site.name,
            "backbone": site.backbone,
            "image_size": site.image_size,
            "epochs": site.epochs,
            "seed": site.seed,
            "training": dict(site.training),
            "shard": _shard_facts(shards.sites[site.name], num_classes),
            **trained[site.name],
        }
        for site in spec.sites
    ]
    arms = [_arm_facts(a, o, sites, num_classes) for a, o in zip(shards.arms, outputs, strict=True)]
    return {
        "study": spec.name,
        "title": spec.title,
        "description": spec.description.strip(),
        "evidence_for": spec.evidence_for.strip(),
        "not_evidence_for": spec.not_evidence_for.strip(),
        "spec_yaml": spec_text,
        "task": spec.task.model_dump(mode="json"),
        "seed": spec.seed,
        "datasets": {
            name: {"file": path.name, "sha256": dataset_digests[name]} for name, path in spec.datasets.items()
        },
        "sites": sites,
        **arms[0],
        "variants": [
            {
                "name": v.name,
                "title": v.title,
                "description": v.description.strip(),
                "evidence_for": v.evidence_for.strip(),
                "not_evidence_for": v.not_evidence_for.strip(),
                **facts,
            }
            for v, facts in zip(spec.variants, arms[1:], strict=True)
        ],
        "seconds_per_step": dict(timings),
        "environment": environment(),
    }


def load_baseline(path: Path | None) -> dict[str, Any] | None:
    """The study.json a study compares itself with, when that study has been run."""
    if path is None or not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def baseline_name(result: Mapping[str, Any]) -> str | None:
    """The study (folder) named by ``compare_with`` in the echoed study file."""
    compare_with = (yaml.safe_load(result["spec_yaml"]) or {}).get("compare_with")
    return Path(compare_with).parent.name if compare_with else None


# --- reading the numbers (intervals and paired tests are shown when the evaluation has them) ----


def _row(methods: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    return next((m for m in methods if m["kind"] == kind), None)


def best_specialist(methods: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The most accurate specialist, the first on ties (the evaluation's own reference rule)."""
    return max((m for m in methods if m["kind"] == "specialist"), key=lambda m: m["accuracy"])


def reference_name(arm: Mapping[str, Any]) -> tuple[str, str]:
    """The arm's reference and what it is: the best specialist, or the study's named reference site."""
    statistics = arm.get("statistics") or {}
    if statistics.get("reference") and statistics.get("reference_rule") == NAMED_REFERENCE_RULE:
        return statistics["reference"], "reference"
    return best_specialist(arm["methods"])["name"], "best specialist"


def interval(method: Mapping[str, Any], metric: str) -> tuple[float, float] | None:
    """The 95 % CI of ``metric`` (``{metric}_ci``) when the evaluation reported one."""
    value = method.get(f"{metric}_ci")
    if isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return float(value[0]), float(value[1])
    return None


def paired(arm: Mapping[str, Any], method: str, metric: str = "accuracy") -> Mapping[str, Any] | None:
    """The paired comparison of ``method`` with the best specialist for ``metric``, when reported."""
    statistics = arm.get("statistics") or {}
    found = next((c for c in statistics.get("comparisons", []) if c["method"] == method), None)
    return (found or {}).get(metric)


def _value(method: Mapping[str, Any], metric: str) -> str:
    value = method.get(metric)
    if value is None:
        return "—"
    ci = interval(method, metric)
    return f"{value:.3f}" + (f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci else "")


def _difference(test: Mapping[str, Any] | None) -> str:
    """``+1.2 (−0.4 to +2.9), p 0.21`` in points, from a paired comparison."""
    if test is None or test.get("difference") is None:
        return "—"
    text = f"{100 * test['difference']:+.1f}"
    if test.get("ci"):
        low, high = test["ci"]
        text += f" ({100 * low:+.1f} to {100 * high:+.1f})"
    return text + (f", p {test['p_value']:.2g}" if test.get("p_value") is not None else "")


def _points(delta: float) -> str:
    return f"{100 * delta:+.1f} points"


def verdict(arm: Mapping[str, Any]) -> str:
    """Where the consensus stands against the best specialist, the vote and RAD only (from the numbers)."""
    methods = arm["methods"]
    consensus, vote, rad = _row(methods, "consensus"), _row(methods, "vote"), _row(methods, "rad")
    if consensus is None:
        return "The evaluation has no consensus row."
    name, what = reference_name(arm)
    best = next(m for m in methods if m["name"] == name)
    acc = consensus["accuracy"]
    parts = [
        f"The consensus arbiter reached accuracy {acc:.3f} against {best['accuracy']:.3f} "
        f"for the {'best single specialist' if what == 'best specialist' else 'reference'} "
        f"({best['name']}): {_points(acc - best['accuracy'])}."
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
            parts.append(f"Against {label} ({row['accuracy']:.3f}) it is {_points(acc - row['accuracy'])}.")
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
        p = test["p_value"]
        finding = (
            "not significantly different"
            if p >= 0.05
            else f"significantly {'above' if test['difference'] > 0 else 'below'}"
        )
        parts.append(f"{m['name']} {_points(test['difference'])} (McNemar p = {p:.2g}, {finding})")
    if not parts:
        return None
    return f"Accuracy against the reference ({reference}): " + "; ".join(parts) + "."


COLLABORATION = ("consensus", "vote", "rad")


def _accuracies(arm: Mapping[str, Any]) -> dict[str, float]:
    """The accuracy of the consensus, the vote, RAD and the best specialist in one arm's methods."""
    rows = {
        kind: row["accuracy"] for kind in COLLABORATION if (row := _row(arm["methods"], kind)) is not None
    }
    return {**rows, "best specialist": best_specialist(arm["methods"])["accuracy"]}


def _mean_accuracies(study: Mapping[str, Any]) -> dict[str, float]:
    """The same accuracies as :func:`_accuracies`, each the mean across the study's repeats."""
    means = {m["kind"].replace("_", " "): m["accuracy"] for m in study["across_repeats"]["methods"]}
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


def _paired_repeats(baseline: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, int]:
    """How many repeats ran with the same seeds in both studies; in how many the consensus dropped less."""
    same = [x == y for x, y in zip(_seeds(baseline), _seeds(result), strict=False)]
    arms = zip(baseline["per_repeat"], result["per_repeat"], same, strict=False)
    pairs = [_drops(_accuracies(b), _accuracies(r)) for b, r, paired in arms if paired]
    smaller = sum(_smaller_than_vote(rows) for rows in pairs if {"consensus", "vote"} <= rows.keys())
    return {"paired": len(pairs), "consensus_drop_smaller": smaller}


def compare(baseline: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
    """Accuracy drop of the consensus and the vote from ``baseline`` (same design, unbiased) to ``result``.

    When both studies were repeated, the accuracies are the means across repeats, and
    ``repeats`` counts the repeats run with the same seeds in both and those of them where the
    consensus' drop was smaller than the vote's.
    """
    if not ("across_repeats" in baseline and "across_repeats" in result):
        return {
            "baseline_study": baseline["study"],
            "accuracy": _drops(_accuracies(baseline), _accuracies(result)),
        }
    return {
        "baseline_study": baseline["study"],
        "accuracy": _drops(_mean_accuracies(baseline), _mean_accuracies(result)),
        "repeats": _paired_repeats(baseline, result),
    }


def comparison_lines(result: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[str]:
    if baseline is None:
        return []
    comparison = compare(baseline, result)
    rows, repeats = comparison["accuracy"], comparison.get("repeats")
    which = "; mean accuracy across repeats" if repeats else ""
    lines = [
        f"Accuracy against the study `{comparison['baseline_study']}` (same design, no biased site{which}):",
        "",
        "| method | unbiased | this study | drop (negative: a gain) |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {k} | {r['baseline']:.3f} | {r['this']:.3f} | {_points(r['drop'])} |" for k, r in rows.items()
    ]
    if "consensus" in rows and "vote" in rows:
        lines += [
            "",
            f"Accuracy changed by {_points(-rows['consensus']['drop'])} for the consensus and by "
            f"{_points(-rows['vote']['drop'])} for the majority vote: the collaboration's drop is "
            f"{'smaller' if _smaller_than_vote(rows) else 'NOT smaller'} than the vote's.",
        ]
        if repeats:
            lines[-1] += (
                f" Repeat by repeat, over the {repeats['paired']} repeats run with the same seeds in both "
                f"studies, it was smaller in {repeats['consensus_drop_smaller']}."
            )
    return lines


# --- Markdown --------------------------------------------------------------------------------


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
        cells = [_value(m, metric) for metric, _ in METRICS]
        cells += [_difference(paired(arm, m["name"], "accuracy")), _difference(paired(arm, m["name"], "auc"))]
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


def subset_test(arm: Mapping[str, Any], method: str) -> Mapping[str, Any] | None:
    """The McNemar test of ``method`` against the best specialist on the disagreement subset."""
    found = next(
        (c for c in (arm.get("disagreement") or {}).get("comparisons", []) if c["method"] == method), None
    )
    return (found or {}).get("accuracy")


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
    rows = {m["name"]: m for m in block["methods"]}
    consensus = next((m for m in block["methods"] if m["kind"] == "consensus"), None)
    reference = rows.get(block["reference"])
    if consensus is None or reference is None:
        return "The disagreement subset has no consensus or reference row."
    acc, ref = consensus["accuracy"], reference["accuracy"]
    text = (
        f"On the {block['n']} of {block['of']} images where the specialists' labels differ, the consensus "
        f"arbiter was right on {consensus['correct']}, accuracy {_value(consensus, 'accuracy')}, against "
        f"{reference['correct']}, {_value(reference, 'accuracy')}, for the {reference_name(arm)[1]} "
        f"({reference['name']}): {_points(acc - ref)}."
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
        cells = [f"{m['correct']}/{m['n']}", _value(m, "accuracy"), _value(m, "balanced_accuracy")]
        lines.append(f"| {name} | {' | '.join(cells)} | {_difference(subset_test(arm, m['name']))} |")
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


def _mean_sd(stat: Mapping[str, Any] | None, digits: int = 3) -> str:
    if stat is None:
        return "—"
    return f"{stat['mean']:.{digits}f} ± " + ("—" if stat["sd"] is None else f"{stat['sd']:.{digits}f}")


def _against_best(counts: Mapping[str, int] | None) -> str:
    if counts is None:
        return "—"
    return " / ".join(str(counts[key]) for key in ("below", "above", "not_significant", "untested"))


def repeats_verdict(across: Mapping[str, Any]) -> str:
    """The consensus across repeats: mean ± sd against the others, and its significant losses and wins."""
    rows = {m["kind"]: m for m in across["methods"]}
    consensus = rows.get("consensus")
    if consensus is None:
        return "The evaluation has no consensus row."
    n = across["repeats"]
    text = (
        f"The consensus arbiter's accuracy was {_mean_sd(consensus['accuracy'])} (mean ± sd over {n} "
        f"repeats) against {_mean_sd(rows['best_specialist']['accuracy'])} for the best specialist of "
        "each repeat"
    )
    for kind, label in (("vote", "the majority vote"), ("rad", "RAD only")):
        if kind in rows:
            text += f", {_mean_sd(rows[kind]['accuracy'])} for {label}"
    counts = across["against_best"][consensus["name"]]
    text += (
        f"; the paired test (McNemar, p < {across['alpha']:g}) put it significantly below the best "
        f"specialist in {counts['below']} of {n} repeats and significantly above it in {counts['above']}"
    )
    untested = f" (no paired test in {counts['untested']})" if counts["untested"] else ""
    text += untested + "."
    subset = across.get("disagreement")
    if subset and subset["consensus"] is not None and subset["best"] is not None:
        c = subset["counts"]
        text += (
            f" Where the specialists disagreed ({_mean_sd(subset['n'], 1)} images per repeat), its accuracy "
            f"was {_mean_sd(subset['consensus'])} against {_mean_sd(subset['best'])} for the best "
            f"specialist: significantly above it in {c['above']} of {n} repeats and below it in {c['below']}."
        )
    return text


def repeats_lines(result: Mapping[str, Any], arm: Mapping[str, Any], sub: str) -> list[str]:
    """Mean ± sd of every method across repeats, each repeat's row with its CIs, and the verdict."""
    across = arm.get("across_repeats")
    if not across:
        return []
    lines = [
        f"{sub} Across {across['repeats']} repeats (mean ± sd; the intervals are each repeat's)",
        "",
        "| method | ACC | macro-F1 | AUC | repeats below / above / not significantly different from / "
        "untested against the best specialist |",
        "|---|---:|---:|---:|---:|",
    ]
    for m in across["methods"]:
        cells = [_mean_sd(m[metric]) for metric, _ in METRICS]
        lines.append(
            f"| {m['name']} | {' | '.join(cells)} | {_against_best(across['against_best'].get(m['name']))} |"
        )
    collaboration = [m["name"] for m in arm["per_repeat"][0]["methods"] if m["kind"] != "specialist"]
    seeds = {r["repeat"]: r for r in result.get("repeats", [])}
    lines += [
        "",
        "| repeat | shuffle seed | site seeds | best specialist, ACC (95 % CI) | "
        + " | ".join(f"{name}, ACC (95 % CI)" for name in collaboration)
        + " | consensus ΔACC vs best, points (CI), McNemar p |",
        "|---:|---:|---|---|" + "---:|" * (len(collaboration) + 1),
    ]
    for r in arm["per_repeat"]:
        info = seeds.get(r["repeat"], {})
        best = best_specialist(r["methods"])
        consensus = _row(r["methods"], "consensus")
        cells = [
            str(r["repeat"]),
            str(info.get("seed", "—")),
            ", ".join(f"{s['name']} {s['seed']}" for s in info.get("sites", [])) or "—",
            f"{best['name']} {_value(best, 'accuracy')}",
            *(_value(m, "accuracy") for name in collaboration for m in r["methods"] if m["name"] == name),
            _difference(paired(r, consensus["name"])) if consensus else "—",
        ]
        lines.append(f"| {' | '.join(cells)} |")
    return [*lines, "", f"**Across repeats.** {repeats_verdict(across)}", ""]


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
        lines += _arm_markdown(result, variant, sub) + _evidence(variant)
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

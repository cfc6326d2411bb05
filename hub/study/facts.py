"""The study's facts (``study.json``): built from a run, and read back by every report.

``study_result`` gathers what a run established (data, shards, sites, each arm's evaluation); the
readers below find rows, the reference and the paired tests in those facts, the same way for
``study.md``, the figures across repeats and ``docs/results.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gsco_common.errors import ConfigError
from hub.evaluation.significance import NAMED_REFERENCE_RULE
from hub.study.environment import environment
from hub.study.spec import StudySpec

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


REPORT_KEYS = ("study", "spec_yaml", "task", "sites", "methods")


def read_report(path: Path) -> dict[str, Any]:
    """A study.json written by ``gsco-hub study``; :class:`ConfigError` naming the file otherwise."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not readable as a study report ({exc})", hint="rerun the study") from None
    missing = [key for key in REPORT_KEYS if key not in report] if isinstance(report, dict) else REPORT_KEYS
    if missing:
        raise ConfigError(
            f"{path}: not a study report of this version (no {', '.join(missing)})", hint="rerun the study"
        )
    return report


def load_baseline(path: Path | None) -> dict[str, Any] | None:
    """The study.json a study compares itself with (``compare_with``), when that study has been run."""
    if path is None or not path.is_file():
        return None
    try:
        return read_report(path)
    except ConfigError as exc:
        raise ConfigError(f"compare_with: {exc.message}", hint=exc.hint) from None


def baseline_name(result: Mapping[str, Any]) -> str | None:
    """The study (folder) named by ``compare_with`` in the echoed study file."""
    compare_with = (yaml.safe_load(result["spec_yaml"]) or {}).get("compare_with")
    return Path(compare_with).parent.name if compare_with else None


def method_row(methods: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
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


def paired(
    arm: Mapping[str, Any], method: str, metric: str = "accuracy", *, against: str = "comparisons"
) -> Mapping[str, Any] | None:
    """The paired comparison of ``method`` with the best specialist for ``metric``, when reported.

    ``against="against_vote"`` reads its comparison with the specialists' vote instead.
    """
    statistics = arm.get("statistics") or {}
    found = next((c for c in statistics.get(against) or [] if c["method"] == method), None)
    return (found or {}).get(metric)


def subset_rows(arm: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """The consensus' and the reference's rows on the disagreement subset; None without both."""
    block = arm.get("disagreement") or {}
    methods = block.get("methods", [])
    consensus = method_row(methods, "consensus")
    reference = next((m for m in methods if m["name"] == block.get("reference")), None)
    return None if consensus is None or reference is None else (consensus, reference)


def subset_test(arm: Mapping[str, Any], method: str) -> Mapping[str, Any] | None:
    """The McNemar test of ``method`` against the best specialist on the disagreement subset."""
    found = next(
        (c for c in (arm.get("disagreement") or {}).get("comparisons", []) if c["method"] == method), None
    )
    return (found or {}).get("accuracy")

"""Study results (study.json) as dicts, scored as the tests need them: no training."""

from __future__ import annotations

from typing import Any

CONSENSUS = "consensus (no generalist)"
SITE = {"name": "site-a", "seed": 0, "images": 30, "class_counts": [15, 15], "val": {"auc": 0.8}}


def arm(
    consensus: float,
    best: float,
    vote: float,
    p: float,
    subset: tuple[int, int, int] | None,
    vote_p: float | None = None,
) -> dict:
    """One evaluation's scores; ``subset``: (consensus right, best right, n) where specialists disagree.

    ``p`` and ``vote_p``: the consensus' McNemar p against the best specialist and the vote.
    """
    disagreement: dict[str, Any] = {"status": "no disagreement"}
    if subset is not None:
        right, best_right, n = subset
        disagreement = {
            "status": "analysed",
            "n": n,
            "reference": "A v1",
            "methods": [
                {"name": "A v1", "kind": "specialist", "correct": best_right},
                {"name": CONSENSUS, "kind": "consensus", "correct": right},
            ],
            "comparisons": [{"method": CONSENSUS, "accuracy": {"p_value": 0.5}}],
        }
    return {
        "methods": [
            {"name": "A v1", "kind": "specialist", "accuracy": best},
            {"name": "B v1", "kind": "specialist", "accuracy": best - 0.1},
            {"name": "specialists' vote", "kind": "vote", "accuracy": vote},
            {"name": CONSENSUS, "kind": "consensus", "accuracy": consensus},
        ],
        "statistics": {
            "reference": "A v1",
            "comparisons": [{"method": CONSENSUS, "accuracy": {"p_value": p}}],
            "against_vote": []
            if vote_p is None
            else [{"method": CONSENSUS, "accuracy": {"p_value": vote_p}}],
        },
        "disagreement": disagreement,
    }


def _facts(scores: dict[str, Any]) -> dict[str, Any]:
    library = {"dataset": "syn", "range": [0.5, 1.0], "source_digest": "sha256:differs-per-study"}
    return {**scores, "evaluation_n": 100, "library": library, "evaluation": {"split": "val"}}


def single_study(study: str, main: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    site = {**SITE, "shard": {"images": 30, "class_counts": [15, 15]}, "training_set_digest": study}
    site.pop("images"), site.pop("class_counts")
    return {
        "study": study,
        "task": {"id": "t"},
        "spec_yaml": "",
        "seed": 0,
        "sites": [site],
        **_facts(main),
        "variants": [{"name": "v", **_facts(variant)}],
    }


def repeated_study(
    study: str,
    runs: list[dict[str, Any]],
    *,
    compare_with: str | None = None,
    class_counts: tuple[int, int] = (15, 15),
    variant: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A study run ``len(runs)`` times (repeat ``i``: shuffle seed ``i``), its one site trained on
    ``class_counts``; ``compare_with`` names its twin; ``variant`` the runs of an arm ``v``."""
    site = {**SITE, "class_counts": list(class_counts), "training_set_digest": study}
    repeats = [{"seed": i, "sites": [{**site, "seed": 100 * i}]} for i in range(len(runs))]
    return {
        "study": study,
        "task": {"id": "t"},
        "spec_yaml": f"compare_with: ../{compare_with}/study.json\n" if compare_with else "",
        "repeats": repeats,
        **_facts(runs[0]),
        "per_repeat": runs,
        "variants": [{"name": "v", **_facts(variant[0]), "per_repeat": variant}] if variant else [],
    }

"""The smallest valid study file as a dict, for tests that change one part of it."""

from __future__ import annotations

from typing import Any


def site(name: str, start: float, stop: float, **extra: Any) -> dict[str, Any]:
    """A resnet18 site at 16 px, one epoch, on ``[start, stop)`` of the synthetic data's train split."""
    return {
        "name": name,
        "backbone": "resnet18",
        "image_size": 16,
        "epochs": 1,
        "shard": {"dataset": "syn", "range": [start, stop]},
        **extra,
    }


def tiny_study(**changes: Any) -> dict[str, Any]:
    """One site on the first half of ``syn.npz``'s train split, the library on the second, val to evaluate."""
    data: dict[str, Any] = {
        "name": "tiny",
        "title": "Tiny",
        "task": {"id": "tiny", "labels": ["a", "b"], "modality": "synthetic"},
        "datasets": {"syn": "syn.npz"},
        "sites": [site("site-a", 0.0, 0.5)],
        "library": {"shard": {"dataset": "syn", "range": [0.5, 1.0]}},
        "evaluation": {"shard": {"dataset": "syn", "split": "val"}},
    }
    data.update(changes)
    return data

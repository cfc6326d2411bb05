"""Test-time augmentation recorded on the card: which views of an image a prediction averages.

``tta: hflip`` averages the class probabilities (and embeddings) of the image and its left-right
mirror. Mirroring is only allowed where the modality's flip rule (:mod:`registry.bundle.flips`)
does not forbid it: never for a chest X-ray, where a mirrored image puts the heart on the wrong
side. The rule fails closed: a modality the table does not know gets no mirror. The site's export
evaluation and the hub's prediction both compute predictions through :func:`views` and
:func:`merge`, so the card's metrics are those of the served model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from registry.bundle.flips import flip_rule

TTA_MODES = ("none", "hflip")


def hflip_allowed(modality: str) -> bool:
    """True where a left-right mirror shows the same anatomy (fail closed on unknown modalities)."""
    rule = flip_rule(modality)
    return rule.known and "hflip" not in rule.forbidden


def tta_problem(tta: str, modality: str) -> str | None:
    """Why ``tta`` cannot be used for ``modality``, or None when it can."""
    if tta not in TTA_MODES:
        return f"must be one of {', '.join(TTA_MODES)}, got {tta!r}"
    if tta == "hflip" and not hflip_allowed(modality):
        rule = flip_rule(modality)
        return f"hflip is not allowed for modality {modality!r} ({rule.family}): {rule.reason}"
    return None


def views(batch: np.ndarray, tta: str) -> list[np.ndarray]:
    """The inputs a prediction of ``batch`` (``[N, 3, S, S]``) runs on: the batch, then its mirror."""
    if tta == "hflip":
        return [batch, np.ascontiguousarray(batch[..., ::-1])]
    return [batch]


def merge(outputs: Sequence[np.ndarray]) -> np.ndarray:
    """The mean over views of one output (probabilities or embeddings), in its own dtype."""
    if len(outputs) == 1:
        return outputs[0]
    return np.mean(np.stack(outputs), axis=0).astype(outputs[0].dtype)

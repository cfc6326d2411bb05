"""Membership-inference audit of a trained specialist, from per-image losses (no model access here).

Two attacks score how well an adversary who sees the model's loss on an image tells whether the
image was a training image (member) or not:

- ``loss-threshold``: a low loss means "member" (Yeom et al.); the card's historical figure.
- ``calibrated`` (optional): the loss relative to a per-class reference, the mean loss of that
  class on held-out *reference* images that are neither members nor evaluated non-members, so
  that classes which are simply easy do not pass for memorised ones.

Each AUC comes with a seeded percentile-bootstrap 95 % interval (members and non-members
resampled separately) and the counts and sampling the figures rest on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from registry.bundle.card import suppress_total
from specialist.metrics import binary_auc

SAMPLING = "uniform without replacement"
DEFAULT_RESAMPLES = 200


def membership_inference_auc(member_losses: np.ndarray, nonmember_losses: np.ndarray) -> float | None:
    """AUC of the loss-threshold attack: how well a low loss tells training images from held-out ones.

    0.5 means the model's losses do not reveal membership; values near 1 mean they do.
    """
    scores = -np.concatenate([np.asarray(member_losses), np.asarray(nonmember_losses)])
    members = np.r_[np.ones(len(member_losses), bool), np.zeros(len(nonmember_losses), bool)]
    return binary_auc(members, scores)


def _auc_ci(
    member_scores: np.ndarray, nonmember_scores: np.ndarray, resamples: int, seed: int
) -> list[float] | None:
    """Percentile-bootstrap 95 % interval of the attack AUC (higher score = "member")."""
    if resamples < 1 or not len(member_scores) or not len(nonmember_scores):
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        members = member_scores[rng.integers(0, len(member_scores), len(member_scores))]
        outsiders = nonmember_scores[rng.integers(0, len(nonmember_scores), len(nonmember_scores))]
        values.append(membership_inference_auc(-members, -outsiders))
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def class_reference(losses: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean reference loss per class (the overall mean for a class without reference images)."""
    losses, labels = np.asarray(losses, np.float64), np.asarray(labels, np.int64)
    overall = float(losses.mean()) if len(losses) else 0.0
    return np.array(
        [float(losses[labels == c].mean()) if np.any(labels == c) else overall for c in range(num_classes)]
    )


def _sample_size(labels: np.ndarray) -> int | str:
    """An audit sample's size as the card may show it: ``suppress_total`` of its classes.

    A sample that is a whole split would otherwise give that split's size, and with the split's
    class counts a suppressed one.
    """
    labels = np.asarray(labels, np.int64)
    return suppress_total(np.bincount(labels).tolist())


def membership_audit(
    member_losses: np.ndarray,
    nonmember_losses: np.ndarray,
    *,
    member_labels: np.ndarray,
    nonmember_labels: np.ndarray,
    non_members_from: str,
    seed: int,
    resamples: int = DEFAULT_RESAMPLES,
    calibration: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The card's ``training.membership_inference`` section.

    The labels of the members and non-members size the samples on the card (:func:`_sample_size`)
    and, with ``calibration`` (``(reference_losses, reference_labels)``, images disjoint from both
    sets), give the calibrated attack its per-class reference.
    """
    members = np.asarray(member_losses, np.float64)
    outsiders = np.asarray(nonmember_losses, np.float64)
    audit: dict[str, Any] = {
        "attack": "loss-threshold",
        "auc": membership_inference_auc(members, outsiders),
        "ci95": _auc_ci(-members, -outsiders, resamples, seed),
        "members": _sample_size(member_labels),
        "non_members": _sample_size(nonmember_labels),
        "sampling": {
            "members_from": "train",
            "non_members_from": non_members_from,
            "method": SAMPLING,
            "seed": seed,
        },
        "bootstrap": {"resamples": resamples, "seed": seed},
        "calibrated": None,
    }
    if calibration is not None:
        reference_losses, reference_labels = calibration
        num_classes = int(max(np.max(member_labels, initial=0), np.max(nonmember_labels, initial=0))) + 1
        reference = class_reference(reference_losses, reference_labels, num_classes)
        relative_members = members - reference[np.asarray(member_labels, np.int64)]
        relative_outsiders = outsiders - reference[np.asarray(nonmember_labels, np.int64)]
        audit["calibrated"] = {
            "auc": membership_inference_auc(relative_members, relative_outsiders),
            "ci95": _auc_ci(-relative_members, -relative_outsiders, resamples, seed),
            "reference_images": _sample_size(reference_labels),
            "reference": "mean held-out loss per class",
        }
    return audit

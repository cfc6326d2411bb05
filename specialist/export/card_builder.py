"""Build ``card.json`` for a trained run: held-out metrics with bootstrap CIs, privacy summary.

Everything on the card is an aggregate or a configuration value: no path, host, user, date or
identifier. Class counts below 10 are suppressed. The card is validated against the registry's
schema before it is returned (:func:`registry.bundle.card.Card.from_dict`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gsco_common.errors import ExportError
from registry.bundle.card import (
    FORMAT_VERSION,
    HEADLINE_METRICS,
    SMALL_COUNT,
    card_problems,
    model_section,
    suppress_count,
    suppress_total,
)
from registry.bundle.preprocess import Preprocessing
from specialist.metrics import SCALAR_METRICS, bootstrap_ci, confusion_matrix
from specialist.task import TaskConfig

DEFAULT_RESAMPLES = 200
RATES = ("sensitivity", "specificity")
DEFAULT_OUT_OF_SCOPE = (
    "Use as the sole basis of a diagnosis or treatment decision.",
    "Images of another modality, body part, age group or acquisition protocol than the training data.",
)
DEFAULT_LIMITATIONS = (
    "Trained and evaluated on one site's data only; performance on other populations, devices "
    "and protocols is unknown until validated there.",
)


def identifiers_to_scan(identifiers: Iterable[str]) -> set[str]:
    """The data's identifiers less the words of the card's built-in texts.

    A data file named like one of them (``data.npz``, an ``images/`` folder) identifies nobody,
    and would otherwise stop every export at the default out-of-scope and limitation texts.
    """
    words = set(re.findall(r"[a-z0-9]+", " ".join((*DEFAULT_OUT_OF_SCOPE, *DEFAULT_LIMITATIONS)).lower()))
    return {value for value in identifiers if value.lower() not in words}


def model_uid(run_id: str, checkpoint: Path) -> str:
    """Opaque id of this trained model: new on every retrain, stable across re-exports.

    A hash of the run's id and its best checkpoint, so it reveals neither (run ids hold dates).
    """
    digest = hashlib.sha256(run_id.encode("utf-8"))
    with checkpoint.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:32]


def _rates(labels: np.ndarray, probs: np.ndarray, index: int) -> tuple[float, float]:
    matrix = confusion_matrix(labels, probs.argmax(axis=1), probs.shape[1])
    positives = matrix[index].sum()
    negatives = matrix.sum() - positives
    true_negatives = negatives - (matrix[:, index].sum() - matrix[index, index])
    sensitivity = matrix[index, index] / positives if positives else np.nan
    specificity = true_negatives / negatives if negatives else np.nan
    return float(sensitivity), float(specificity)


def _estimate(
    labels: np.ndarray, probs: np.ndarray, metric: Any, resamples: int, seed: int
) -> dict[str, float | list[float] | None]:
    value = metric(labels, probs)
    value = None if value is None or np.isnan(value) else float(value)
    interval = bootstrap_ci(labels, probs, metric, n=resamples, seed=seed) if resamples else None
    return {"value": value, "ci95": None if interval is None else [float(interval[0]), float(interval[1])]}


def _class_rate(
    labels: np.ndarray, probs: np.ndarray, index: int, which: int, denominator: int, resamples: int, seed: int
) -> dict[str, float | list[float] | None]:
    """Class ``index``'s sensitivity (``which`` 0) or specificity (1); left out over fewer than 10 images."""
    if denominator < SMALL_COUNT:
        return {"value": None, "ci95": None}
    return _estimate(labels, probs, lambda y, p: _rates(y, p, index)[which], resamples, seed)


def evaluation_section(
    labels: np.ndarray,
    probs: np.ndarray,
    label_names: Sequence[str],
    *,
    split: str,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Held-out metrics: point estimates with percentile-bootstrap 95% intervals.

    Small cells stay suppressed here too: a class rate over fewer than 10 images (a class's
    sensitivity, the specificity over the other classes) is left out (``value`` and ``ci95``
    null), as 6 of 7 would give the count back; and ``n`` is the sum of the class counts shown
    (:func:`registry.bundle.card.suppress_total`).
    """
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64)
    counts = np.bincount(labels, minlength=len(label_names))
    per_class = []
    for index, name in enumerate(label_names):
        denominators = (int(counts[index]), int(counts.sum() - counts[index]))
        rates = {
            rate: _class_rate(labels, probs, index, which, denominators[which], resamples, seed)
            for which, rate in enumerate(RATES)
        }
        per_class.append({"label": name, **rates})
    return {
        "split": split,
        "n": suppress_total(counts.tolist()),
        "metrics": {
            name: _estimate(labels, probs, SCALAR_METRICS[name], resamples, seed) for name in HEADLINE_METRICS
        },
        "per_class": per_class,
        "operating_point": {"rule": "argmax", "threshold": 0.5 if len(label_names) == 2 else None},
        "ece": _estimate(labels, probs, SCALAR_METRICS["ece"], resamples, seed),
        "bootstrap": {"resamples": resamples, "seed": seed},
    }


PRIVACY_CARD_KEYS = (
    "notion",
    "epsilon",
    "delta",
    "accountant",
    "max_grad_norm",
    "noise_multiplier",
    "sample_rate",
    "steps",
)


def privacy_section(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The card's ``training.privacy`` from a run's DP report (``metrics.json``), or None without DP."""
    if not report:
        return None
    return {key: report[key] for key in PRIVACY_CARD_KEYS if report.get(key) is not None}


def pretrained_section(weights: dict[str, str] | None, origin: str) -> dict[str, str] | None:
    """The card's ``training.pretrained``: file name, sha256 and the operator's origin text."""
    if weights is None:
        return None
    return {"file": weights["file"], "sha256": weights["sha256"], "origin": origin.strip()}


def _texts(values: Sequence[str], defaults: Sequence[str]) -> list[str]:
    cleaned = [value.strip() for value in values if value.strip()]
    return cleaned or list(defaults)


def build_card(
    *,
    task: TaskConfig,
    backbone: str,
    embedding_dim: int,
    preprocessing: Preprocessing,
    opset: int,
    evaluation: dict[str, Any],
    epochs: int,
    best_epoch: int,
    seed: int,
    membership_auc: float | None,
    class_counts: dict[str, Sequence[int]],
    key_fingerprint: str,
    uid: str,
    dp_epsilon: float | None = None,
    federation: dict[str, Any] | None = None,
    training_set_digest: str | None = None,
    privacy: dict[str, Any] | None = None,
    membership: dict[str, Any] | None = None,
    tta: str = "none",
    pretrained: dict[str, str] | None = None,
    recipe: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble and validate the card; empty use/limitation texts get conservative defaults.

    ``training_set_digest`` (``registry.bundle.provenance``) names the training set as a whole,
    so that a hub can refuse to calibrate on it. ``privacy`` is the DP-SGD report of the run
    (:func:`privacy_section`); its spent ε is also ``training.dp_epsilon``. ``membership`` is the
    audit of :func:`specialist.export.membership.membership_audit`. ``tta`` is the test-time
    augmentation the evaluation used and the hub applies (``registry.bundle.tta``);
    ``pretrained`` is :func:`pretrained_section`; ``recipe`` is the run's
    training recipe (:func:`specialist.training.recipes.card_recipe`).

    Raises:
        ExportError: the card breaks the schema (names each field).
    """
    labels = list(task.labels)
    size = preprocessing.input_size
    intended = task.intended_use.strip() or (
        f"Research decision support: classify {task.modality} images as one of {', '.join(labels)}, "
        "for review by a qualified clinician."
    )
    card: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model_uid": uid,
        "task": {
            "id": task.id,
            "labels": labels,
            "modality": task.modality,
            "intended_use": intended,
            "out_of_scope": _texts(task.out_of_scope, DEFAULT_OUT_OF_SCOPE),
            "limitations": _texts(task.limitations, DEFAULT_LIMITATIONS),
        },
        "model": model_section(backbone, len(labels), embedding_dim, size, opset),
        "preprocessing": preprocessing.to_dict(),
        "inference": {"tta": tta},
        "evaluation": evaluation,
        "training": {
            "epochs": epochs,
            "best_epoch": best_epoch,
            "seed": seed,
            "dp_epsilon": dp_epsilon,
            "membership_inference_auc": membership_auc,
        },
        "data": {
            "class_counts": {
                split: {label: suppress_count(int(n)) for label, n in zip(labels, counts, strict=True)}
                for split, counts in class_counts.items()
                if sum(counts) > 0
            }
        },
        "site": {"key_fingerprint": key_fingerprint},
    }
    if membership is not None:
        card["training"]["membership_inference"] = membership
    if pretrained is not None:
        card["training"]["pretrained"] = pretrained
    if recipe is not None:
        card["training"]["recipe"] = recipe
    if privacy is not None:
        card["training"]["privacy"] = privacy
        card["training"]["dp_epsilon"] = privacy["epsilon"]
    if federation is not None:
        card["federation"] = federation
    if training_set_digest is not None:
        card["data"]["training_set_digest"] = training_set_digest
    problems = card_problems(card)
    if problems:
        raise ExportError(
            "the model card would be invalid: " + "; ".join(problems[:5]),
            hint="check task.* and training.tta in site.yaml (ids, labels, texts of at most 2000 characters)",
        )
    return card

"""``RUN_DIR/bundle/``: the signed, anonymized specialist that may leave the site.

The site's part: its best checkpoint, real validation images for the parity check, the held-out
evaluation of the exported model (bootstrap intervals, a loss-threshold membership-inference
test), the site's identifying strings, ``export.deny_list`` and the site key. Staging, ONNX
export with anonymization and parity, the PHI scan of model and card and the signature are
:func:`specialist.export.bundle.build_bundle`, the same path as the hub's federated bundle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from gsco_common.errors import ModelError
from gsco_common.keys import (
    fingerprint,
    load_signing_key,
)
from registry.bundle.card import INPUT_NAME, card_strings
from registry.bundle.layout import bundle_digest
from registry.bundle.phi import system_identifiers
from registry.bundle.preprocess import Preprocessing, preprocess_batch
from registry.bundle.tta import merge, views
from site_agent.config import SiteConfig, load_site_config, site_key_paths
from site_agent.data.loader import load_site_data
from site_agent.training.run_dir import BEST, checkpoint_path, load_model, load_run
from specialist.data import LabelledImages
from specialist.export.bundle import PrivacyScan, build_bundle
from specialist.export.card_builder import (
    DEFAULT_RESAMPLES,
    build_card,
    evaluation_section,
    identifiers_to_scan,
    model_uid,
    pretrained_section,
    privacy_section,
)
from specialist.export.membership import membership_audit
from specialist.export.onnx_export import ExportResult
from specialist.metrics import nll_per_example
from specialist.training.recipes import card_recipe

BUNDLE_DIR = "bundle"
PRIVACY_HINT = (
    "nothing was written; remove them from site.yaml (task texts, training.weights_origin) "
    "or adjust export.deny_list"
)
PARITY_IMAGES = 64
MIA_IMAGES = 256
BATCH = 64


@dataclass(frozen=True)
class BundleReport:
    """What ``site-agent export`` reports (aggregates only)."""

    path: Path
    bundle_digest: str
    model_uid: str
    key_fingerprint: str
    max_abs_diff: float
    parity_images: int
    split: str
    metrics: dict[str, float | None]
    membership_inference_auc: float | None
    size_bytes: int
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {
            "bundle_dir": str(self.path),
            "bundle_digest": self.bundle_digest,
            "model_uid": self.model_uid,
            "key_fingerprint": self.key_fingerprint,
            "parity": {"max_abs_diff": self.max_abs_diff, "images": self.parity_images},
            "held_out_split": self.split,
            "metrics": self.metrics,
            "membership_inference_auc": self.membership_inference_auc,
            "model_bytes": self.size_bytes,
            "seconds": round(self.seconds, 2),
        }


def _inputs(images: LabelledImages, indices: np.ndarray, spec: Preprocessing) -> np.ndarray:
    return preprocess_batch([images.image(int(i)) for i in indices], spec)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _onnx_probs(
    session: ort.InferenceSession,
    images: LabelledImages,
    indices: np.ndarray,
    spec: Preprocessing,
    tta: str = "none",
) -> np.ndarray:
    """Softmax of the exported model's logits, averaged over the card's TTA views: what the hub sees."""
    chunks = []
    for start in range(0, len(indices), BATCH):
        batch = _inputs(images, indices[start : start + BATCH], spec)
        chunks.append(
            merge([_softmax(session.run(["logits"], {INPUT_NAME: view})[0]) for view in views(batch, tta)])
        )
    return np.concatenate(chunks).astype(np.float64)


def _sample(size: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(size, size=min(size, limit), replace=False))


def _site_dir(run_dir: Path) -> Path:
    return run_dir.resolve().parent.parent


def export_bundle(
    run_dir: Path,
    *,
    site_dir: Path | None = None,
    site: SiteConfig | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    calibrated_mia: bool = False,
    progress: Callable[[str], None] = lambda _step: None,
) -> BundleReport:
    """Write ``run_dir/bundle/{model.onnx, card.json, site.sig}`` for the run's best model.

    The membership-inference audit samples up to 256 training images (members) and 256 held-out
    images (non-members); ``calibrated_mia`` adds the calibrated attack, whose per-class reference
    comes from the other half of the held-out images (the non-members are then the first half).

    ``site_dir`` defaults to the folder holding ``runs/``. Raises :class:`PrivacyError` naming
    the field when any published string matches the site's data identifiers, host or user name
    or ``export.deny_list``; nothing is written then.
    """
    start = time.perf_counter()
    info = load_run(run_dir)
    site_dir = site_dir or _site_dir(run_dir)
    site = site or load_site_config(site_dir)
    if info.best_epoch is None or not checkpoint_path(run_dir, BEST).is_file():
        raise ModelError("the run has no best checkpoint yet", hint="finish training (or resume it) first")
    private_path, public_path = site_key_paths(site_dir)
    key = load_signing_key(private_path, public_path)
    progress("loading data")
    data = load_site_data(info.data, info.label_names, info.seed)
    scan = PrivacyScan(
        tuple({*identifiers_to_scan(data.identifiers), *system_identifiers()}),
        tuple(site.export.deny_list),
        PRIVACY_HINT,
    )
    same_task = (site.task.id, tuple(site.task.labels)) == (info.task_id, info.label_names)
    task = site.task if same_task else info.task
    scan.refuse(card_strings(task.model_dump(mode="json"), "card.task"))
    spec = info.preprocessing
    rng = np.random.default_rng(info.seed)
    val = data.split("val")
    model = load_model(run_dir)
    parity = _inputs(val, _sample(len(val), PARITY_IMAGES, rng), spec)
    held: dict[str, Any] = {}

    def make_card(exported: ExportResult, onnx_path: Path) -> dict[str, Any]:
        progress("evaluating the exported model")
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        split = "test" if len(data.splits.get("test", [])) else "val"
        held_out = data.split(split)
        tta = info.training.tta
        probs = _onnx_probs(session, held_out, np.arange(len(held_out)), spec, tta)
        evaluation = evaluation_section(
            held_out.labels, probs, info.label_names, split=split, resamples=resamples, seed=info.seed
        )
        train = data.split("train")
        members = _sample(len(train), MIA_IMAGES, rng)
        member_labels = train.labels[members].astype(np.int64)
        member_losses = nll_per_example(_onnx_probs(session, train, members, spec, tta), member_labels)
        held_labels = held_out.labels.astype(np.int64)
        held_losses = nll_per_example(probs, held_labels)
        if calibrated_mia:
            order = rng.permutation(len(held_out))
            half = len(order) // 2
            outsiders, reference = np.sort(order[:half][:MIA_IMAGES]), order[half:]
            calibration = (held_losses[reference], held_labels[reference])
        else:
            outsiders, calibration = _sample(len(held_out), MIA_IMAGES, rng), None
        audit = membership_audit(
            member_losses,
            held_losses[outsiders],
            member_labels=member_labels,
            nonmember_labels=held_labels[outsiders],
            non_members_from=split,
            seed=info.seed,
            resamples=resamples,
            calibration=calibration,
        )
        mia = audit["auc"]
        held.update(split=split, evaluation=evaluation, mia=mia)
        return build_card(
            task=task,
            backbone=info.backbone,
            embedding_dim=info.embedding_dim,
            preprocessing=spec,
            opset=exported.opset,
            evaluation=evaluation,
            epochs=info.epochs_completed or info.epochs,
            best_epoch=info.best_epoch,
            seed=info.seed,
            membership_auc=mia,
            class_counts=info.class_counts,
            key_fingerprint=fingerprint(key.public_key()),
            uid=model_uid(info.run_id, checkpoint_path(run_dir, BEST)),
            training_set_digest=info.training_set_digest,
            privacy=privacy_section(info.metrics.get("privacy")),
            membership=audit,
            tta=tta,
            pretrained=pretrained_section(info.pretrained, info.training.weights_origin),
            recipe=card_recipe(info.training),
        )

    target = run_dir / BUNDLE_DIR
    exported, card = build_bundle(
        target,
        model=model,
        parity_inputs=parity,
        make_card=make_card,
        key=key,
        scan=scan,
        progress=progress,
    )
    evaluation, split, mia = held["evaluation"], held["split"], held["mia"]
    headline = {name: evaluation["metrics"][name]["value"] for name in evaluation["metrics"]}
    return BundleReport(
        path=target,
        bundle_digest=bundle_digest(target),
        model_uid=card["model_uid"],
        key_fingerprint=card["site"]["key_fingerprint"],
        max_abs_diff=exported.max_abs_diff,
        parity_images=exported.num_parity_images,
        split=split,
        metrics=headline,
        membership_inference_auc=mia,
        size_bytes=exported.size_bytes,
        seconds=time.perf_counter() - start,
    )

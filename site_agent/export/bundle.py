"""``RUN_DIR/bundle/``: the signed, anonymized specialist that may leave the site.

Steps, all in a staging folder that only replaces ``RUN_DIR/bundle`` once everything passed:
ONNX export with anonymization, PHI scan and PyTorch parity on real validation images
(:mod:`site_agent.export.onnx_export`); held-out evaluation of the exported model with
bootstrap intervals and a loss-threshold membership-inference test; the card; a PHI scan of
the card; the site signature (:mod:`registry.bundle.signing`), verified before it is kept.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from registry.bundle.card import card_strings, write_card
from registry.bundle.layout import MODEL_FILE, SITE_SIG, bundle_digest
from registry.bundle.phi import scan_strings, system_identifiers
from registry.bundle.preprocess import Preprocessing, preprocess_batch
from registry.bundle.signing import sign_bundle, verify_bundle
from registry.errors import ModelError, PrivacyError
from registry.keys import (
    fingerprint,
    load_private_key,
    load_public_key,
    passphrase_from_env_or_prompt,
    public_pem,
)
from site_agent.config import SiteConfig, load_site_config, site_key_paths
from site_agent.data.base import LabelledImages
from site_agent.data.loader import load_site_data
from site_agent.export.card_builder import (
    DEFAULT_RESAMPLES,
    build_card,
    evaluation_section,
    membership_inference_auc,
    model_uid,
)
from site_agent.export.onnx_export import INPUT_NAME, export_specialist
from site_agent.training.run_dir import BEST, checkpoint_path, load_model, load_run

BUNDLE_DIR = "bundle"
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


def _onnx_probs(
    session: ort.InferenceSession, images: LabelledImages, indices: np.ndarray, spec: Preprocessing
) -> np.ndarray:
    """Softmax of the exported model's logits: the numbers the hub will see."""
    chunks = []
    for start in range(0, len(indices), BATCH):
        logits = session.run(["logits"], {INPUT_NAME: _inputs(images, indices[start : start + BATCH], spec)})[
            0
        ]
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        chunks.append(shifted / shifted.sum(axis=1, keepdims=True))
    return np.concatenate(chunks).astype(np.float64)


def _losses(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0))


def _sample(size: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(size, size=min(size, limit), replace=False))


def _refuse_identifying(named: Iterable[tuple[str, str]], forbidden: set[str], deny_list: list[str]) -> None:
    """Raise :class:`PrivacyError` naming the card fields (never the values) that match."""
    hits = scan_strings(named, forbidden, deny_list=deny_list)
    if hits:
        raise PrivacyError(
            f"card.json would contain identifying strings in: {', '.join(hits[:10])}",
            hint="nothing was written; remove them from site.yaml (task texts) or adjust export.deny_list",
        )


def _site_dir(run_dir: Path) -> Path:
    return run_dir.resolve().parent.parent


def export_bundle(
    run_dir: Path,
    *,
    site_dir: Path | None = None,
    site: SiteConfig | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    progress: Callable[[str], None] = lambda _step: None,
) -> BundleReport:
    """Write ``run_dir/bundle/{model.onnx, card.json, site.sig}`` for the run's best model.

    ``site_dir`` defaults to the folder holding ``runs/``. Raises :class:`PrivacyError` naming
    the field when any published string matches the site's data identifiers, host or user name
    or ``export.deny_list``; nothing is written then.
    """
    start = time.perf_counter()
    site_dir = site_dir or _site_dir(run_dir)
    site = site or load_site_config(site_dir)
    info = load_run(run_dir)
    if info.best_epoch is None or not checkpoint_path(run_dir, BEST).is_file():
        raise ModelError("the run has no best checkpoint yet", hint="finish training (or resume it) first")
    private_path, public_path = site_key_paths(site_dir)
    public_key = load_public_key(public_path)
    key = load_private_key(private_path, passphrase_from_env_or_prompt(confirm=False))
    if fingerprint(key.public_key()) != fingerprint(public_key):
        raise ModelError(
            "keys/site.key and keys/site.pub are not a pair", hint="restore the site's key files"
        )
    progress("loading data")
    data = load_site_data(info.data, info.label_names, info.seed)
    forbidden = {*data.identifiers, *system_identifiers()}
    deny_list = list(site.export.deny_list)
    same_task = (site.task.id, tuple(site.task.labels)) == (info.task_id, info.label_names)
    task = site.task if same_task else info.task
    _refuse_identifying(card_strings(task.model_dump(mode="json"), "card.task"), forbidden, deny_list)
    spec = info.preprocessing
    rng = np.random.default_rng(info.seed)
    val = data.split("val")
    model = load_model(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bundle-", dir=run_dir) as tmp:
        staging = Path(tmp) / BUNDLE_DIR
        staging.mkdir()
        progress("exporting ONNX")
        exported = export_specialist(
            model,
            staging / MODEL_FILE,
            _inputs(val, _sample(len(val), PARITY_IMAGES, rng), spec),
            forbidden=forbidden,
            deny_list=deny_list,
        )
        progress("evaluating the exported model")
        session = ort.InferenceSession(str(staging / MODEL_FILE), providers=["CPUExecutionProvider"])
        split = "test" if len(data.splits.get("test", [])) else "val"
        held_out = data.split(split)
        everything = np.arange(len(held_out))
        probs = _onnx_probs(session, held_out, everything, spec)
        evaluation = evaluation_section(
            held_out.labels, probs, info.label_names, split=split, resamples=resamples, seed=info.seed
        )
        train = data.split("train")
        members = _sample(len(train), MIA_IMAGES, rng)
        outsiders = _sample(len(held_out), MIA_IMAGES, rng)
        mia = membership_inference_auc(
            _losses(_onnx_probs(session, train, members, spec), train.labels[members].astype(np.int64)),
            _losses(probs[outsiders], held_out.labels[outsiders].astype(np.int64)),
        )
        card = build_card(
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
            key_fingerprint=fingerprint(public_key),
            uid=model_uid(info.run_id, checkpoint_path(run_dir, BEST)),
        )
        _refuse_identifying(card_strings(card), forbidden, deny_list)
        write_card(card, staging)
        progress("signing")
        sign_bundle(staging, key, staging / SITE_SIG)
        verify_bundle(staging, public_pem(public_key), staging / SITE_SIG)
        target = run_dir / BUNDLE_DIR
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
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

"""What a site keeps between the messages of a federated run: its config, data and model.

The ClientApp never receives data locations from the hub: the SuperNode's node config carries
only ``site-dir``, and everything else is read from that folder's ``site.yaml`` with the same
readers, model factory and training loop as ``site-agent train``. A session is cached per site
folder, so the warm task gate (:mod:`.gate`) reads and preprocesses the data once per process.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gsco_common.errors import ConfigError, FederationError
from gsco_common.keys import fingerprint, load_public_key
from registry.bundle.card import shown_total
from registry.bundle.preprocess import Preprocessing
from site_agent.config import SiteConfig, load_site_config, site_key_paths
from site_agent.data.loader import load_site_data
from specialist.data import LabelledImages, SiteData
from specialist.export.membership import membership_inference_auc
from specialist.inputs import PreparedImages
from specialist.metrics import compute_metrics, nll_per_example
from specialist.models.factory import create_specialist
from specialist.models.specialist import Specialist
from specialist.predict import predict
from specialist.training.device import select_device
from specialist.training.dp import BudgetGuard, make_dp_compatible
from specialist.training.loop import train_local

SITE_MIN_COUNT = 10
"""Counts below this never leave the site (a hub may ask for a higher threshold, never a lower one)."""

EVAL_KEYS = ("loss", "accuracy", "balanced_accuracy", "macro_f1", "auc", "ece")
MIA_IMAGES = 256


def no_metrics() -> dict[str, float]:
    """What a site reports instead of metrics it did not compute or must not release."""
    return {"examples": 0.0, **dict.fromkeys(EVAL_KEYS, math.nan)}


@dataclass
class SiteSession:
    """A site's configuration, data and (per architecture) model, loaded once per process."""

    site_dir: Path
    config: SiteConfig
    data: SiteData
    site_fingerprint: str
    _models: dict[tuple[str, int, bool], Specialist] = field(default_factory=dict)
    _prepared: dict[tuple[str, Preprocessing], PreparedImages] = field(default_factory=dict)

    @classmethod
    def open(cls, site_dir: Path) -> SiteSession:
        config = load_site_config(site_dir)
        if config.data is None:
            raise ConfigError("site.yaml has no data block", hint="set data.path in site.yaml")
        data = load_site_data(config.data, config.task.labels, seed=config.training.seed)
        if config.training.num_threads:
            torch.set_num_threads(config.training.num_threads)
        public = site_key_paths(site_dir)[1]
        site_fingerprint = fingerprint(load_public_key(public)) if public.is_file() else ""
        return cls(site_dir=site_dir, config=config, data=data, site_fingerprint=site_fingerprint)

    @property
    def label_names(self) -> list[str]:
        return list(self.config.task.labels)

    def check_task(self, task_id: str) -> None:
        if task_id != self.config.task.id:
            raise FederationError(
                f"this site trains task {self.config.task.id!r}, not {task_id!r}",
                hint="start the run for the site's task, or leave this site out",
            )

    @property
    def dp_sgd(self) -> bool:
        """Whether this site trains its local steps with DP-SGD (``training.dp`` in its site.yaml)."""
        return self.config.training.dp.enabled

    def model(self, backbone: str, image_size: int, dp_model: bool = False) -> Specialist:
        """The site's model object for this architecture (weights are always overwritten by the hub's).

        ``dp_model``: the run's model has GroupNorm in place of BatchNorm (the hub's ``dp-model``),
        built here exactly as at the hub. A site with DP-SGD refuses a run without it.
        """
        if self.dp_sgd and not dp_model:
            raise FederationError(
                "this site trains with DP-SGD (training.dp in its site.yaml), but the run's model "
                "has batch norm, which DP-SGD cannot train",
                hint="start the run with `gsco-hub federation run --dp-model`, or turn training.dp off here",
            )
        key = (backbone, image_size, dp_model)
        if key not in self._models:
            model = create_specialist(backbone, len(self.label_names), image_size, pretrained=False)
            if dp_model:
                model = make_dp_compatible(model)
            self._models[key] = model.to(select_device(self.config.training.device))
        return self._models[key]

    def prepared(self, split: str, preprocessing: Preprocessing) -> PreparedImages:
        key = (split, preprocessing)
        if key not in self._prepared:
            self._prepared[key] = PreparedImages(
                self.data.split(split), preprocessing, self.config.training.cache_mb
            )
        return self._prepared[key]

    def training_set_digest(self) -> str:
        """The digest of the data the site trains on (its ``train`` split), as a local card records it."""
        if self.config.data is None:
            raise ConfigError("site.yaml has no data block", hint="set data.path in site.yaml")
        return self.config.data.training_set_digest()

    def held_out_split(self) -> str:
        """The split the final model is judged on: ``test`` when the site has one, else ``val``."""
        test = self.data.splits.get("test")
        return "test" if test is not None and len(test) > 0 else "val"

    def train(
        self,
        model: Specialist,
        epochs: int,
        lr: float,
        batch_size: int,
        seed: int,
        proximal_mu: float,
        guard: BudgetGuard | None = None,
    ) -> dict[str, float]:
        """Local epochs on the ``train`` split with the site's own loop (FedProx term when ``mu > 0``).

        ``guard``: the run's DP-SGD budget guard (:mod:`.private`) when the site trains with DP-SGD.
        """
        options = self.config.training.model_copy(update={"lr": lr, "batch_size": batch_size})
        train = self.training_images(model)
        return train_local(
            model,
            train,
            model.preprocessing,
            options,
            epochs,
            seed=seed,
            proximal_mu=proximal_mu,
            modality=self.config.task.modality,
            guard=guard,
        )

    def training_images(self, model: Specialist) -> PreparedImages:
        """The ``train`` split prepared for ``model``; refused when too small to take part safely."""
        train = self.prepared("train", model.preprocessing)
        if len(train) < SITE_MIN_COUNT:
            raise FederationError(f"fewer than {SITE_MIN_COUNT} training images: too few to take part safely")
        return train

    def _probs(self, model: Specialist, images: LabelledImages | PreparedImages) -> np.ndarray:
        probs, _ = predict(model, images, model.preprocessing, batch_size=self.config.training.batch_size)
        return probs

    def _scored(
        self, model: Specialist, split: str, min_count: int
    ) -> tuple[PreparedImages, np.ndarray] | None:
        """The split's inputs and ``model``'s probabilities, or None when the split is too small to report."""
        images = self.prepared(split, model.preprocessing)
        if len(images) < max(min_count, SITE_MIN_COUNT):
            return None
        return images, self._probs(model, images)

    def _summary(self, images: PreparedImages, probs: np.ndarray, threshold: int) -> dict[str, float]:
        metrics = compute_metrics(images.labels, probs, self.label_names)
        values = {key: metrics[key] for key in EVAL_KEYS if key != "loss"}
        values["loss"] = float(nll_per_example(probs, images.labels).mean())
        clean = {key: math.nan if value is None else float(value) for key, value in values.items()}
        counts = np.bincount(images.labels, minlength=len(self.label_names))
        return {"examples": float(shown_total(counts.tolist(), threshold)), **clean}

    def evaluate(self, model: Specialist, split: str, min_count: int) -> dict[str, float]:
        """Aggregate metrics of ``model`` on ``split``; all NaN and ``examples = 0`` when too few images."""
        scored = self._scored(model, split, min_count)
        return no_metrics() if scored is None else self._summary(*scored, max(min_count, SITE_MIN_COUNT))

    def held_out_report(self, model: Specialist, min_count: int, seed: int) -> dict[str, float | list[float]]:
        """The final model on the held-out split: metrics, per-class rates and membership inference.

        Per-class ``sensitivity`` / ``specificity`` come with the class ``support`` (the hub pools
        them support-weighted); classes below the count threshold report NaN and support 0.
        ``mia-auc`` is the loss-threshold membership-inference AUC, training images (members)
        against held-out ones, computed here so that no per-image value leaves the site.
        """
        classes = len(self.label_names)
        scored = self._scored(model, self.held_out_split(), min_count)
        if scored is None:
            nothing = [math.nan] * classes
            support = [0.0] * classes
            return {
                **no_metrics(),
                "sensitivity": nothing,
                "specificity": nothing,
                "support": support,
                "mia-auc": math.nan,
            }
        images, probs = scored
        threshold = max(min_count, SITE_MIN_COUNT)
        report: dict[str, float | list[float]] = dict(self._summary(images, probs, threshold))
        per_class = compute_metrics(images.labels, probs, self.label_names)["per_class"]
        rows = [per_class[name] for name in self.label_names]
        shown = [row["support"] >= threshold for row in rows]
        report["support"] = [
            float(row["support"]) if ok else 0.0 for row, ok in zip(rows, shown, strict=True)
        ]
        for key in ("sensitivity", "specificity"):
            report[key] = [
                float(row[key]) if ok and row[key] is not None else math.nan
                for row, ok in zip(rows, shown, strict=True)
            ]
        rng = np.random.default_rng(seed)
        train = self.data.split("train")
        members = train.subset(rng.permutation(len(train))[:MIA_IMAGES])
        outsiders = rng.permutation(len(images))[:MIA_IMAGES]
        member_probs = self._probs(model, PreparedImages(members, model.preprocessing, 0))
        auc = membership_inference_auc(
            nll_per_example(member_probs, members.labels),
            nll_per_example(probs[outsiders], images.labels[outsiders]),
        )
        report["mia-auc"] = math.nan if auc is None else float(auc)
        return report

    def examples(self, split: str, min_count: int) -> int:
        """The size of ``split`` as the hub may see it (:func:`~registry.bundle.card.shown_total`)."""
        counts = self.data.split(split).class_counts(len(self.label_names))
        return shown_total(counts, max(min_count, SITE_MIN_COUNT))

    def class_counts(self, split: str, min_count: int) -> list[int]:
        """Per-class counts of ``split`` with counts below the threshold replaced by -1 (suppressed)."""
        counts = self.data.split(split).class_counts(len(self.label_names))
        threshold = max(min_count, SITE_MIN_COUNT)
        return [count if count >= threshold else -1 for count in counts]


_SESSIONS: dict[Path, SiteSession] = {}


def open_session(node_config: Mapping[str, object]) -> SiteSession:
    """The cached session of the site named by the SuperNode's node config ``site-dir``."""
    raw = node_config.get("site-dir")
    if not isinstance(raw, str) or not raw:
        raise ConfigError(
            "the SuperNode has no site-dir in its node config", hint="start it with `site-agent join`"
        )
    site_dir = Path(raw).resolve()
    if site_dir not in _SESSIONS:
        _SESSIONS[site_dir] = SiteSession.open(site_dir)
    return _SESSIONS[site_dir]

"""A real registry with enrolled sites, and real signed bundles of randomly initialised specialists.

Bundles go through the same steps a site's export does (ONNX export, anonymization, card,
site signature) and through the registry's real publish / approve / revoke (MLflow on SQLite,
policy checks, central approval signature). ``bench/runtime.py`` serves from such a world, and
the runtime and hub tests use it through ``tests/gsco_runtime/world.py``; tasks isolate tests
sharing one registry.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gsco_common.keys import generate_key_pair, load_private_key, passphrase_from_env_or_prompt
from registry.bundle.card import write_card
from registry.bundle.layout import MODEL_FILE, SITE_SIG
from registry.bundle.signing import sign_bundle
from registry.config import RegistryConfig
from registry.service import Registry
from specialist.export.anonymize import anonymize_model
from specialist.export.onnx_export import to_onnx
from specialist.models.factory import create_specialist
from specialist.models.specialist import Specialist

LABELS = ("normal", "pneumonia")
MODALITY = "chest X-ray"
SIZE = 32
_task_counter = itertools.count(1)


@functools.cache
def exported(backbone: str, seed: int, num_classes: int = 2, size: int = SIZE) -> tuple[bytes, Specialist]:
    """A randomly initialised specialist (seeded) and its anonymized ONNX bytes."""
    torch.manual_seed(seed)
    model = create_specialist(backbone, num_classes, size, pretrained=False).eval()
    return anonymize_model(to_onnx(model)).SerializeToString(), model


def card_for(
    task_id: str,
    labels: tuple[str, ...],
    model: Specialist,
    fingerprint: str,
    *,
    uid_seed: str,
    balanced_accuracy: float = 0.8,
    training_set_digest: str | None = None,
) -> dict[str, Any]:
    """A complete, schema-valid card for ``model``."""

    def est(value: float) -> dict[str, Any]:
        return {"value": value, "ci95": [max(0.0, value - 0.05), min(1.0, value + 0.05)]}

    size = model.image_size
    return {
        "format_version": "1.0",
        "model_uid": hashlib.sha256(uid_seed.encode()).hexdigest()[:32],
        "task": {
            "id": task_id,
            "labels": list(labels),
            "modality": MODALITY,
            "intended_use": "research on decision support for chest X-ray triage",
            "out_of_scope": ["clinical use"],
            "limitations": ["trained on a small public dataset"],
        },
        "model": {
            "backbone": model.backbone,
            "num_classes": len(labels),
            "embedding_dim": model.embedding_dim,
            "input": {"name": "image", "shape": ["batch", 3, size, size]},
            "outputs": {"logits": ["batch", len(labels)], "embedding": ["batch", model.embedding_dim]},
            "opset": 18,
        },
        "preprocessing": model.preprocessing.to_dict(),
        "evaluation": {
            "split": "val",
            "n": 200,
            "metrics": {
                "accuracy": est(balanced_accuracy),
                "balanced_accuracy": est(balanced_accuracy),
                "macro_f1": est(balanced_accuracy),
                "auc": est(min(1.0, balanced_accuracy + 0.1)),
            },
            "per_class": [
                {"label": label, "sensitivity": est(0.8), "specificity": est(0.8)} for label in labels
            ],
            "operating_point": {"rule": "argmax", "threshold": 0.5},
            "ece": est(0.05),
            "bootstrap": {"resamples": 200, "seed": 0},
        },
        "training": {
            "epochs": 1,
            "best_epoch": 1,
            "seed": 0,
            "dp_epsilon": None,
            "membership_inference_auc": 0.5,
        },
        "data": {
            "class_counts": {"train": dict.fromkeys(labels, 100), "val": dict.fromkeys(labels, 50)},
            **({"training_set_digest": training_set_digest} if training_set_digest else {}),
        },
        "site": {"key_fingerprint": fingerprint},
    }


@dataclass
class Site:
    name: str
    key_path: Path
    fingerprint: str


@dataclass
class World:
    """One registry home plus enrolled sites; bundles are built under ``root / 'bundles'``."""

    root: Path
    config: RegistryConfig
    sites: dict[str, Site] = field(default_factory=dict)
    _count: itertools.count = field(default_factory=lambda: itertools.count(1))

    def registry(self) -> Registry:
        return Registry.open(self.config)

    def new_task(self, labels: tuple[str, ...] = LABELS) -> str:
        task_id = f"task{next(_task_counter)}"
        with self.registry() as registry:
            registry.create_task(task_id, labels, MODALITY)
        return task_id

    def enroll(self, name: str) -> Site:
        keys = self.root / "sites" / name
        passphrase = passphrase_from_env_or_prompt(confirm=False, prompt=False)
        fp = generate_key_pair(keys / "site.key", keys / "site.pub", passphrase)
        with self.registry() as registry:
            registry.enroll_site(name, (keys / "site.pub").read_bytes())
        self.sites[name] = Site(name, keys / "site.key", fp)
        return self.sites[name]

    def bundle(
        self,
        task_id: str,
        backbone: str,
        site: str,
        *,
        seed: int = 0,
        labels: tuple[str, ...] = LABELS,
        balanced_accuracy: float = 0.8,
        size: int = SIZE,
        training_set_digest: str | None = None,
        card_edit: Callable[[dict[str, Any]], None] | None = None,
    ) -> Path:
        """A signed bundle folder (not yet published); ``card_edit`` may change the card first."""
        data, model = exported(backbone, seed, len(labels), size)
        folder = self.root / "bundles" / f"b{next(self._count)}"
        folder.mkdir(parents=True)
        (folder / MODEL_FILE).write_bytes(data)
        owner = self.sites[site]
        card = card_for(
            task_id,
            labels,
            model,
            owner.fingerprint,
            uid_seed=f"{folder}{seed}",
            balanced_accuracy=balanced_accuracy,
            training_set_digest=training_set_digest,
        )
        if card_edit is not None:
            card_edit(card)
        write_card(card, folder)
        key = load_private_key(owner.key_path, passphrase_from_env_or_prompt(confirm=False, prompt=False))
        sign_bundle(folder, key, folder / SITE_SIG)
        return folder

    def publish(
        self, task_id: str, backbone: str, site: str, *, seed: int = 0, approve: bool = True, **kwargs: Any
    ) -> tuple[str, str]:
        folder = self.bundle(task_id, backbone, site, seed=seed, **kwargs)
        with self.registry() as registry:
            result = registry.publish(folder)
            if approve:
                registry.approve(result.name, result.version, reviewer="tester")
        shutil.rmtree(folder)
        return result.name, result.version

    def approve(self, name: str, version: str) -> None:
        with self.registry() as registry:
            registry.approve(name, version, reviewer="tester")

    def revoke(self, name: str, version: str) -> None:
        with self.registry() as registry:
            registry.revoke(name, version, reason="test", reviewer="tester")


def make_world(root: Path) -> World:
    config = RegistryConfig.resolve(home=root / "registry", retries=0)
    registry, _ = Registry.init(config)
    registry.close()
    world = World(root=root, config=config)
    world.enroll("site-a")
    world.enroll("site-b")
    return world


def sample_images(n: int, seed: int = 0, size: int = 28) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size), dtype=np.uint8) for _ in range(n)]

"""A real registry with enrolled sites, and real signed bundles of randomly initialised specialists.

Bundles go through the steps a site's export does (``export_specialist``: ONNX export,
anonymization, PHI scan, parity check; ``build_card``; site signature) and through the
registry's real publish / approve / revoke (MLflow on SQLite, policy checks, central approval
signature); only their held-out metrics are set rather than measured. ``bench/runtime.py``
serves from such a world. The tests serve real specialists (trained and exported by the site
agent, ``tests/site_bundle.py``) in such a registry, and world-made bundles only in the backbone
parity test (convolutional backbones next to their torch model); tasks isolate tests sharing one
registry.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gsco_common.keys import generate_key_pair, load_private_key, passphrase_from_env_or_prompt
from registry.bundle.card import write_card
from registry.bundle.layout import MODEL_FILE, SITE_SIG
from registry.bundle.preprocess import preprocess_batch
from registry.bundle.signing import sign_bundle
from registry.config import RegistryConfig
from registry.service import Registry
from specialist.export.card_builder import build_card
from specialist.export.onnx_export import OPSET, export_specialist
from specialist.models.factory import create_specialist
from specialist.models.specialist import Specialist
from specialist.task import TaskConfig

LABELS = ("normal", "pneumonia")
MODALITY = "chest X-ray"
SIZE = 32
_task_counter = itertools.count(1)


PARITY_IMAGES = 4


@functools.cache
def exported(backbone: str, seed: int, num_classes: int = 2, size: int = SIZE) -> tuple[bytes, Specialist]:
    """A randomly initialised specialist (seeded) and its ONNX bytes from the site's export step.

    :func:`export_specialist` anonymizes, PHI-scans, validates and parity-tests the model (on
    preprocessed sample images) exactly as ``site-agent export`` does.
    """
    torch.manual_seed(seed)
    model = create_specialist(backbone, num_classes, size, pretrained=False).eval()
    parity = preprocess_batch(sample_images(PARITY_IMAGES, seed=seed), model.preprocessing)
    with tempfile.TemporaryDirectory(prefix="gsco-world-") as tmp:
        path = Path(tmp) / MODEL_FILE
        export_specialist(model, path, parity)
        return path.read_bytes(), model


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
    """The card :func:`build_card` assembles (and validates) for ``model``.

    Its held-out metrics are set, not measured (random weights): tests choose each specialist's
    reliability. A bundle measured by the real site path is ``tests/site_bundle.py``'s.
    """

    def est(value: float) -> dict[str, Any]:
        return {"value": value, "ci95": [max(0.0, value - 0.05), min(1.0, value + 0.05)]}

    evaluation = {
        "split": "val",
        "n": 200,
        "metrics": {
            "accuracy": est(balanced_accuracy),
            "balanced_accuracy": est(balanced_accuracy),
            "macro_f1": est(balanced_accuracy),
            "auc": est(min(1.0, balanced_accuracy + 0.1)),
        },
        "per_class": [{"label": label, "sensitivity": est(0.8), "specificity": est(0.8)} for label in labels],
        "operating_point": {"rule": "argmax", "threshold": 0.5},
        "ece": est(0.05),
        "bootstrap": {"resamples": 200, "seed": 0},
    }
    task = TaskConfig(
        id=task_id,
        labels=list(labels),
        modality=MODALITY,
        intended_use="research on decision support for chest X-ray triage",
        out_of_scope=["clinical use"],
        limitations=["trained on a small public dataset"],
    )
    return build_card(
        task=task,
        backbone=model.backbone,
        embedding_dim=model.embedding_dim,
        preprocessing=model.preprocessing,
        opset=OPSET,
        evaluation=evaluation,
        epochs=1,
        best_epoch=1,
        seed=0,
        membership_auc=0.5,
        class_counts={"train": [100] * len(labels), "val": [50] * len(labels)},
        key_fingerprint=fingerprint,
        uid=hashlib.sha256(uid_seed.encode()).hexdigest()[:32],
        training_set_digest=training_set_digest,
    )


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

    def new_task(self, labels: tuple[str, ...] = LABELS, task_id: str | None = None) -> str:
        task_id = task_id or f"task{next(_task_counter)}"
        with self.registry() as registry:
            registry.create_task(task_id, labels, MODALITY)
        return task_id

    def adopt(self, name: str, public_key_pem: bytes) -> None:
        """Enroll a site whose key pair lives elsewhere (a real site's): it publishes its own bundles."""
        with self.registry() as registry:
            registry.enroll_site(name, public_key_pem)

    def publish_folder(self, folder: Path, *, approve: bool = True) -> tuple[str, str]:
        """Publish (and approve) a bundle folder built elsewhere, e.g. by ``site-agent export``."""
        with self.registry() as registry:
            result = registry.publish(folder)
            if approve:
                registry.approve(result.name, result.version, reviewer="tester")
        return result.name, result.version

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
        published = self.publish_folder(folder, approve=approve)
        shutil.rmtree(folder)
        return published

    def approve(self, name: str, version: str) -> None:
        with self.registry() as registry:
            registry.approve(name, version, reviewer="tester")

    def revoke(self, name: str, version: str) -> None:
        with self.registry() as registry:
            registry.revoke(name, version, reason="test", reviewer="tester")


def make_world(root: Path, sites: tuple[str, ...] = ("site-a", "site-b")) -> World:
    """A new registry under ``root`` with ``sites`` enrolled (each with a key pair made here)."""
    config = RegistryConfig.resolve(home=root / "registry", retries=0)
    registry, _ = Registry.init(config)
    registry.close()
    world = World(root=root, config=config)
    for site in sites:
        world.enroll(site)
    return world


def sample_images(n: int, seed: int = 0, size: int = 28) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size), dtype=np.uint8) for _ in range(n)]

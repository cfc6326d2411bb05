"""One bundle made the way a hospital makes it: `site-agent` training, then its real export.

Training (timm's tiny test ViT at 28 px, two epochs on generated data), :func:`export_bundle` (ONNX export,
parity check, evaluation of the exported model, membership audit, ``build_card``, PHI scan, site
signature): a few seconds, once per test session (``site_bundle`` in tests/conftest.py). The
runtime and hub tests publish it into their own registries next to the many random-weight
bundles of ``bench/world.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from gsco_common.keys import generate_key_pair
from site_agent.config import render_site_template, site_key_paths, validate_site_config
from site_agent.data.config import DataConfig
from site_agent.data.synthetic import write_synthetic_npz
from site_agent.export.bundle import BundleReport, export_bundle
from site_agent.training.trainer import train_run
from specialist.training.config import AugmentationConfig, TrainingConfig

TASK = "sitebundle"
LABELS = ("normal", "pneumonia")
MODALITY = "chest X-ray"
BACKBONE = "test_vit"
"""timm's tiny ViT: LayerNorm (no batch statistics), so two epochs on a few images pass the policy floor."""


@dataclass(frozen=True)
class SiteBundle:
    """The exported bundle folder, the site's public key, and the data it was trained on."""

    folder: Path
    public_key: bytes
    data: DataConfig
    seed: int
    report: BundleReport


def make_site_bundle(root: Path) -> SiteBundle:
    npz = write_synthetic_npz(root / "tiny.npz", n_per_class=60, val_per_class=10)
    site_dir = root / "site"
    site_dir.mkdir()
    raw = yaml.safe_load(render_site_template("Bundle Site", TASK, list(LABELS), MODALITY))
    raw["data"] = {"path": str(npz)}
    (site_dir / "site.yaml").write_text(yaml.safe_dump(raw))
    config = validate_site_config(raw)
    private, public = site_key_paths(site_dir)
    generate_key_pair(private, public, os.environ["GSCO_KEY_PASSPHRASE"].encode())
    training = TrainingConfig(
        image_size=28, epochs=2, batch_size=16, device="cpu", augmentation=AugmentationConfig(enabled=False)
    )
    run = train_run(site_dir, config, config.data, BACKBONE, training).run_dir
    report = export_bundle(run, site_dir=site_dir, site=config)
    return SiteBundle(report.path, public.read_bytes(), config.data, training.seed, report)

"""Bundles made the way a hospital makes them: `site-agent` training, then its real export.

Training (timm's tiny test ViT at 28 px, two epochs on generated data), :func:`export_bundle`
(ONNX export, parity check, evaluation of the exported model, membership audit, ``build_card``,
PHI scan, site signature): a few seconds each, once per test session (``real_specialists`` in
tests/conftest.py). Each of the :data:`REAL_SITES` trains its own specialist (its own seed and
its own generated data), so the specialists disagree on some images. The runtime, hub, security
and deploy tests publish them into their registries (:func:`publish_real`, as the site that
trained them or as another enrolled site; :func:`make_real_world` for a registry whose sites are
theirs). ``bench/world.py``'s random-weight bundles remain in one test only,
``tests/gsco_runtime/test_preprocess_parity.py``'s backbone parity (it needs the convolutional
backbones next to the torch model each bundle came from), and in the benchmarks.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.world import Site, World, make_world
from gsco_common.keys import generate_key_pair, load_private_key
from registry.bundle.card import write_card
from registry.bundle.layout import SITE_SIG
from registry.bundle.signing import sign_bundle
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
REAL_SITES = ("real-1", "real-2", "real-3")
"""The registry names of the sites that trained the real specialists (one specialist each)."""
KEPT_BUNDLES_ENV = "GSCO_TEST_BUNDLES"
"""A folder that keeps the real specialists between test sessions (``bench/mutation.py`` sets it)."""
KEPT_MANIFEST = "site-bundle.json"
_copies = itertools.count(1)


@dataclass(frozen=True)
class SiteBundle:
    """The exported bundle folder, the site's keys, and the data it was trained on."""

    folder: Path
    public_key: bytes
    private_key: Path
    data: DataConfig
    seed: int
    report: BundleReport

    @property
    def card(self) -> dict[str, Any]:
        """The card the site's export wrote (measured metrics, real uid, real preprocessing)."""
        return json.loads((self.folder / "card.json").read_text())


def make_site_bundle(root: Path, *, seed: int = 0) -> SiteBundle:
    """Train and export one specialist; ``seed`` picks both the generated data and the training seed."""
    root.mkdir(parents=True, exist_ok=True)
    # named like a word of the card's own texts ("training data"): no false alarm stops the export
    npz = write_synthetic_npz(root / "data.npz", n_per_class=60, val_per_class=10, seed=seed)
    site_dir = root / "site"
    site_dir.mkdir()
    raw = yaml.safe_load(render_site_template("Bundle Site", TASK, list(LABELS), MODALITY))
    raw["data"] = {"path": str(npz)}
    (site_dir / "site.yaml").write_text(yaml.safe_dump(raw))
    config = validate_site_config(raw)
    private, public = site_key_paths(site_dir)
    generate_key_pair(private, public, os.environ["GSCO_KEY_PASSPHRASE"].encode())
    training = TrainingConfig(
        image_size=28,
        epochs=2,
        batch_size=16,
        device="cpu",
        seed=seed,
        augmentation=AugmentationConfig(enabled=False),
    )
    run = train_run(site_dir, config, config.data, BACKBONE, training).run_dir
    report = export_bundle(run, site_dir=site_dir, site=config)
    return SiteBundle(report.path, public.read_bytes(), private, config.data, training.seed, report)


def session_site_bundle(fresh_root: Path, *, seed: int) -> SiteBundle:
    """The real specialist of ``seed`` for a test session: made under ``fresh_root``, or kept.

    With :data:`KEPT_BUNDLES_ENV` set, the specialist trained and exported there by an earlier
    session is reused (the first session makes it): a mutation run starts one test session per
    mutant, and the mutated modules take no part in training or export.
    """
    kept = os.environ.get(KEPT_BUNDLES_ENV)
    if not kept:
        return make_site_bundle(fresh_root, seed=seed)
    return kept_site_bundle(Path(kept) / f"seed{seed}", seed=seed)


def kept_site_bundle(root: Path, *, seed: int) -> SiteBundle:
    """The specialist kept under ``root``, trained and exported there first if it is not yet complete.

    The manifest is written last, so a folder without one (an interrupted session) is made again;
    a lock lets one session make it while the others wait.
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    manifest = root / KEPT_MANIFEST
    with root.with_name(f"{root.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not manifest.is_file():
            shutil.rmtree(root, ignore_errors=True)
            made = make_site_bundle(root, seed=seed)
            record = {
                "public_key": made.public_key.decode("ascii"),
                "private_key": str(made.private_key),
                "data": made.data.model_dump(mode="json"),
                "report": {**asdict(made.report), "path": str(made.report.path)},
            }
            manifest.write_text(json.dumps(record))
    record = json.loads(manifest.read_text())
    report = BundleReport(**{**record["report"], "path": Path(record["report"]["path"])})
    public, private = record["public_key"].encode("ascii"), Path(record["private_key"])
    return SiteBundle(report.path, public, private, DataConfig(**record["data"]), seed, report)


def enroll_real_sites(
    world: World, specialists: tuple[SiteBundle, ...], names: tuple[str, ...] = REAL_SITES
) -> None:
    """Enroll the sites that trained ``specialists`` (their own public keys) under ``names``."""
    for name, specialist in zip(names, specialists, strict=True):
        if name not in world.sites:
            world.adopt(name, specialist.public_key)
            world.sites[name] = Site(name, specialist.private_key, specialist.report.key_fingerprint)


def make_real_world(root: Path, specialists: tuple[SiteBundle, ...]) -> World:
    """A new registry under ``root`` whose only sites are the real specialists' (:data:`REAL_SITES`)."""
    world = make_world(root, sites=())
    enroll_real_sites(world, specialists)
    return world


def publish_real(
    world: World,
    task_id: str,
    specialist: SiteBundle,
    *,
    approve: bool = True,
    site: str | None = None,
    card_edit: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[str, str]:
    """Publish (and approve) the real ``specialist`` for ``task_id`` in ``world``.

    The registry isolates tests by task and a card names its task, so the site's exported bundle
    is copied with the card's ``task.id`` set to ``task_id`` and signed again with the site key;
    model, metrics, uid and preprocessing are the export's. ``site`` (an enrolled site of
    ``world``) publishes it as that site instead of the one that trained it: its key signs, its
    fingerprint goes in the card (another version of one site's model, a model re-published by
    another site, a forger's site). ``card_edit`` changes the card before signing (an older card
    format). The registry revokes a *model* (its ``model.onnx`` digest) in every task: a test
    that revokes a real specialist does it in a registry of its own (:func:`make_real_world`).
    """
    signer = world.sites[site] if site else None
    key_path = signer.key_path if signer else specialist.private_key
    fingerprint = signer.fingerprint if signer else specialist.report.key_fingerprint
    folder = world.root / "bundles" / f"real{next(_copies)}"
    shutil.copytree(specialist.folder, folder)
    (folder / SITE_SIG).unlink()
    card = specialist.card
    card["task"]["id"] = task_id
    card["site"]["key_fingerprint"] = fingerprint
    if card_edit is not None:
        card_edit(card)
    write_card(card, folder)
    key = load_private_key(key_path, os.environ["GSCO_KEY_PASSPHRASE"].encode())
    sign_bundle(folder, key, folder / SITE_SIG)
    published = world.publish_folder(folder, approve=approve)
    shutil.rmtree(folder)
    return published

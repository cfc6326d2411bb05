"""Options a site records on the card and the hub applies: TTA, input geometry, pretrained weights.

One small site (breast ultrasound, where a left-right mirror is allowed) trains resnet18 for one
epoch from a local weights file pinned by digest, with ``tta: hflip``, and exports. The hub side
is the real runtime (``gsco_runtime.pool``) serving that bundle from its card.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from gsco_common.errors import ConfigError
from gsco_common.keys import generate_key_pair
from gsco_runtime.pool.card import read_specialist_info
from gsco_runtime.pool.source import BundleRef
from gsco_runtime.pool.specialist import LoadedSpecialist
from gsco_runtime.pool.threads import ThreadBudget
from registry.bundle.card import Card
from registry.bundle.layout import file_sha256
from site_agent.cli.main import app
from site_agent.config import render_site_template, site_key_paths, validate_site_config
from site_agent.data.loader import load_site_data
from site_agent.data.synthetic import write_synthetic_npz
from site_agent.training.run_dir import load_model, load_run
from site_agent.training.trainer import train_run
from specialist.export.card_builder import evaluation_section
from specialist.metrics import compute_metrics
from specialist.models import create_specialist, save_backbone_weights
from specialist.predict import predict
from specialist.training.config import TrainingConfig

pytestmark = pytest.mark.slow
runner = CliRunner()
LABELS = ["benign", "malignant"]
ORIGIN = "GSCo central team, weights release 2026-11 (USB medium)"


def _site(folder: Path, modality: str) -> tuple[Path, dict]:
    npz = write_synthetic_npz(folder / "tiny.npz", n_per_class=40, val_per_class=10)
    raw = yaml.safe_load(render_site_template("Option Site", "breast-us", LABELS, modality))
    raw["data"] = {"path": str(npz)}
    site_dir = folder / "site"
    site_dir.mkdir()
    (site_dir / "site.yaml").write_text(yaml.safe_dump(raw))
    return site_dir, raw


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("options-site")
    site_dir, raw = _site(folder, "breast ultrasound")
    generate_key_pair(*site_key_paths(site_dir), os.environ["GSCO_KEY_PASSPHRASE"].encode())
    weights = folder / "weights"
    weights.mkdir()
    torch.manual_seed(11)
    save_backbone_weights(
        create_specialist("resnet18", 2, 28, pretrained=False), weights / "resnet18.safetensors"
    )
    digest = file_sha256(weights / "resnet18.safetensors")
    training = TrainingConfig(
        image_size=28,
        epochs=1,
        batch_size=16,
        device="cpu",
        tta="hflip",
        weights_dir=weights,
        weights_sha256=f"sha256:{digest.upper()}",
        weights_origin=ORIGIN,
    )
    config = validate_site_config(raw)
    run = train_run(site_dir, config, config.data, "resnet18", training).run_dir
    result = runner.invoke(app, ["export", str(run), "--json"])
    assert result.exit_code == 0, result.output
    return {"run": run, "bundle": run / "bundle", "digest": digest, "weights": weights}


def _served(bundle: Path) -> LoadedSpecialist:
    info = read_specialist_info(
        BundleRef(task_id="breast-us", name="breast-us.resnet18", version="1"), bundle
    )
    return LoadedSpecialist.load(bundle / "model.onnx", info, ThreadBudget(2))


def test_the_card_records_tta_geometry_and_the_weights_file(exported: dict) -> None:
    card = Card.read(exported["bundle"])
    assert card.tta == "hflip"
    assert card.preprocessing.resize == "pad" and card.preprocessing.pad_value == 0.0
    assert card.pretrained == {"file": "resnet18.safetensors", "sha256": exported["digest"], "origin": ORIGIN}
    assert str(exported["weights"]) not in (exported["bundle"] / "card.json").read_text()


def test_the_hub_predicts_with_the_cards_tta_exactly_as_the_export_evaluated(exported: dict) -> None:
    card = Card.read(exported["bundle"])
    info = load_run(exported["run"])
    split = load_site_data(info.data, info.label_names, info.seed).split(card.data["evaluation"]["split"])
    images = [split.image(i) for i in range(len(split))]
    served = _served(exported["bundle"])
    assert served.info.tta == "hflip"
    probs, embeddings = served.predict_many(images)
    bootstrap = card.data["evaluation"]["bootstrap"]
    hub_evaluation = evaluation_section(
        split.labels, probs, LABELS, split=card.data["evaluation"]["split"], **bootstrap
    )
    assert hub_evaluation == card.data["evaluation"]  # the card's numbers are the served model's

    before = (served.batcher.batches_run, served.batcher.items_run)
    single, _ = served.predict(images[0])
    np.testing.assert_allclose(single, probs[0], atol=1e-6)  # the micro-batched path agrees
    after = (served.batcher.batches_run, served.batcher.items_run)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 2)  # both views in one batch
    plain = LoadedSpecialist(dataclasses.replace(served.info, tta="none"), served._session, ThreadBudget(2))
    no_tta, _ = plain.predict_many(images)
    assert not np.allclose(no_tta, probs, atol=1e-4)  # the mirror view really is averaged in

    torch_probs, torch_embeddings = predict(
        load_model(exported["run"]), split, card.preprocessing, tta="hflip"
    )
    np.testing.assert_allclose(torch_probs, probs, atol=1e-4)  # `site-agent evaluate` agrees
    np.testing.assert_allclose(torch_embeddings, embeddings, atol=1e-3, rtol=1e-3)


def test_tta_hflip_is_refused_for_chest_x_rays_before_a_run_starts(tmp_path: Path) -> None:
    site_dir, raw = _site(tmp_path, "chest X-ray")
    config = validate_site_config(raw)
    training = TrainingConfig(image_size=28, epochs=1, batch_size=16, device="cpu", tta="hflip")
    with pytest.raises(ConfigError, match=r"training\.tta: hflip is not allowed for modality 'chest X-ray'"):
        train_run(site_dir, config, config.data, "resnet18", training)
    assert not (site_dir / "runs").exists() or not list((site_dir / "runs").iterdir())


def test_evaluate_reports_the_metrics_with_the_runs_tta(exported: dict) -> None:
    result = runner.invoke(app, ["evaluate", str(exported["run"]), "--split", "val", "--json"])
    assert result.exit_code == 0, result.output
    info = load_run(exported["run"])
    split = load_site_data(info.data, info.label_names, info.seed).split("val")
    probs, _ = predict(load_model(exported["run"]), split, info.preprocessing, tta="hflip")
    assert json.loads(result.stdout)["metrics"] == json.loads(
        json.dumps(compute_metrics(split.labels, probs, LABELS))
    )

"""`site-agent export RUN_DIR`: the bundle layout, its card and its site signature.

Generated (synthetic) npz data: these tests check the bundle, not accuracy, so they stay small.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gsco_common.keys import generate_key_pair
from registry.bundle.card import Card
from site_agent.cli.main import app
from site_agent.config import render_site_template, site_key_paths, validate_site_config
from site_agent.data.synthetic import write_synthetic_npz
from site_agent.training.run_dir import load_run
from site_agent.training.trainer import train_run
from specialist.export.membership import membership_inference_auc
from specialist.training.config import TrainingConfig
from specialist.training.recipes import card_recipe

pytestmark = pytest.mark.slow
runner = CliRunner()
LABELS = ["normal", "pneumonia"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A site with two 1-epoch resnet18 runs at 28 px, and the first run exported."""
    folder = tmp_path_factory.mktemp("export-site")
    print("[data] generated synthetic npz (bundle tests do not need ../shared/data)")
    npz = write_synthetic_npz(folder / "tiny.npz", n_per_class=40, val_per_class=10)
    site_dir = folder / "site"
    raw = yaml.safe_load(render_site_template("Export Site", "pneumonia", LABELS, "chest X-ray"))
    raw["data"] = {"path": str(npz)}
    site_dir.mkdir()
    (site_dir / "site.yaml").write_text(yaml.safe_dump(raw))
    config = validate_site_config(raw)
    generate_key_pair(*site_key_paths(site_dir), os.environ["GSCO_KEY_PASSPHRASE"].encode())
    training = TrainingConfig(image_size=28, epochs=1, batch_size=16, device="cpu")
    runs = [train_run(site_dir, config, config.data, "resnet18", training).run_dir for _ in range(2)]
    exported = runner.invoke(app, ["export", str(runs[0]), "--json"])
    assert exported.exit_code == 0, exported.output
    return {"site_dir": site_dir, "run": runs[0], "retrained": runs[1], "report": json.loads(exported.stdout)}


def test_bundle_holds_exactly_the_model_the_card_and_the_site_signature(site: dict) -> None:
    bundle = site["run"] / "bundle"
    assert sorted(p.name for p in bundle.iterdir()) == ["card.json", "model.onnx", "site.sig"]
    assert site["report"]["parity"]["max_abs_diff"] <= 1e-3
    assert site["report"]["bundle_digest"].startswith("sha256:")


def test_card_carries_what_approval_needs(site: dict) -> None:
    card = Card.read(site["run"] / "bundle")
    data = card.data
    assert (
        card.labels == tuple(LABELS) and card.backbone == "resnet18" and card.preprocessing.input_size == 28
    )
    assert data["evaluation"]["split"] == "test"
    for estimate in data["evaluation"]["metrics"].values():
        assert estimate["ci95"] is None or estimate["ci95"][0] <= estimate["value"] <= estimate["ci95"][1]
    assert 0.0 <= data["training"]["membership_inference_auc"] <= 1.0
    assert data["training"]["dp_epsilon"] is None and data["training"]["epochs"] == 1
    recipe = data["training"]["recipe"]
    assert recipe == card_recipe(load_run(site["run"]).training)
    assert (recipe["name"], recipe["head_init"], recipe["lr"]) == ("default", "library", 1e-3)
    assert (recipe["augmentation"]["hflip"], recipe["augmentation"]["vflip"]) == (False, False)  # chest X-ray
    counts = data["data"]["class_counts"]
    assert counts["val"] == {"normal": 10, "pneumonia": 10}
    assert "<10" in counts["test"].values()
    assert data["task"]["intended_use"] and data["task"]["limitations"]
    text = (site["run"] / "bundle" / "card.json").read_text()
    for private in (str(site["site_dir"]), site["run"].name, "tiny.npz", "Export Site"):
        assert private not in text


def test_model_uid_is_stable_for_a_run_and_new_on_every_retrain(site: dict) -> None:
    uid = Card.read(site["run"] / "bundle").model_uid
    assert re.fullmatch(r"[0-9a-f]{32}", uid) and site["run"].name not in uid
    for run in (site["run"], site["retrained"]):
        assert runner.invoke(app, ["export", str(run)]).exit_code == 0
    assert Card.read(site["run"] / "bundle").model_uid == uid  # re-exporting the same run keeps it
    assert Card.read(site["retrained"] / "bundle").model_uid != uid  # a retrain gets a new one


def test_third_party_cli_accepts_the_bundle_and_rejects_one_changed_byte(site: dict, tmp_path: Path) -> None:
    bundle = shutil.copytree(site["run"] / "bundle", tmp_path / "bundle")
    command = [
        str(Path(sys.executable).with_name("model_signing")), "verify", "key", str(bundle),
        "--signature", str(bundle / "site.sig"), "--public_key", str(site["site_dir"] / "keys" / "site.pub"),
    ]  # fmt: skip
    assert subprocess.run(command, capture_output=True, timeout=120).returncode == 0
    model = bytearray((bundle / "model.onnx").read_bytes())
    model[-10] ^= 0x01
    (bundle / "model.onnx").write_bytes(bytes(model))
    assert subprocess.run(command, capture_output=True, timeout=120).returncode != 0


def test_membership_inference_auc_reads_losses() -> None:
    assert membership_inference_auc([0.1, 0.2], [0.9, 1.0]) == 1.0
    assert membership_inference_auc([0.5, 0.5], [0.5, 0.5]) == 0.5
    assert membership_inference_auc([], [0.5]) is None


@pytest.mark.filterwarnings("ignore::getpass.GetPassWarning")
def test_export_refusals(site: dict, tmp_path: Path) -> None:
    wrong = runner.invoke(
        app, ["export", str(site["retrained"])], env={"GSCO_KEY_PASSPHRASE": "not-the-passphrase"}
    )
    assert wrong.exit_code == 5 and "error[GSCO-400]" in wrong.stderr
    had_bundle = (site["retrained"] / "bundle").exists()
    no_key = runner.invoke(  # no passphrase and no terminal to ask on (systemd, </dev/null)
        app, ["export", str(site["retrained"])], env={"GSCO_KEY_PASSPHRASE": None}, input=""
    )
    assert no_key.exit_code == 5 and "error[GSCO-400]: no key passphrase" in no_key.stderr
    assert "Traceback" not in no_key.output and (site["retrained"] / "bundle").exists() == had_bundle
    unfinished = site["site_dir"] / "runs" / "unfinished"
    shutil.copytree(site["retrained"], unfinished, ignore=shutil.ignore_patterns("*.pt", "metrics.json"))
    refused = runner.invoke(app, ["export", str(unfinished)])
    assert refused.exit_code == 4 and "no best checkpoint" in refused.stderr
    assert runner.invoke(app, ["export", str(tmp_path)]).exit_code == 2

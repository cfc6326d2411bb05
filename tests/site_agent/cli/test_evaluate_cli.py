"""`site-agent evaluate`: the hub's preprocessing path reproduces training's metrics; tables and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from site_agent.cli.main import app
from site_agent.config import SiteConfig, render_site_template
from site_agent.data.config import DataConfig
from site_agent.data.synthetic import write_synthetic_npz
from site_agent.training.trainer import train_run
from specialist.training.config import TrainingConfig

runner = CliRunner()
LABELS = ["normal", "abnormal"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    print("[data] evaluate tests use generated synthetic data")
    root = tmp_path_factory.mktemp("evaluate")
    npz = write_synthetic_npz(root / "toy.npz", n_per_class=24, val_per_class=6)
    site = SiteConfig.model_validate(yaml.safe_load(render_site_template("S", "toy", LABELS, "synthetic")))
    training = TrainingConfig(image_size=28, epochs=1, batch_size=8, device="cpu")
    return train_run(root / "site", site, DataConfig(path=npz), "resnet10t", training).run_dir


@pytest.mark.parametrize("split", ["val", "test"])
def test_evaluate_reproduces_the_training_metrics(run_dir: Path, split: str) -> None:
    result = runner.invoke(app, ["evaluate", str(run_dir), "--split", split, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["split"] == split and report["backbone"] == "resnet10t"
    stored = json.loads((run_dir / "metrics.json").read_text())[split]
    fresh = report["metrics"]
    assert set(fresh) == set(stored) - {"loss"}
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "auc", "ece"):
        assert fresh[key] == pytest.approx(stored[key], abs=1e-6), key
    assert fresh["confusion_matrix"] == stored["confusion_matrix"] and fresh["n"] == stored["n"]


def test_evaluate_prints_tables(run_dir: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(run_dir)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    for text in ("balanced_accuracy", "macro_f1", "ece", "sensitivity", "specificity", "normal", "abnormal"):
        assert text in result.output
    assert "confusion matrix" in result.output


def test_evaluate_on_other_data(run_dir: Path, tmp_path: Path) -> None:
    other = write_synthetic_npz(tmp_path / "other.npz", n_per_class=10, val_per_class=5, seed=7)
    result = runner.invoke(app, ["evaluate", str(run_dir), "--data", str(other), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["n"] == 10


def test_evaluate_errors(run_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(tmp_path)])
    assert result.exit_code == 2 and "not a run folder" in result.output
    assert runner.invoke(app, ["evaluate", str(run_dir), "--split", "train"]).exit_code == 2
    result = runner.invoke(app, ["evaluate", str(run_dir), "--data", str(tmp_path / "missing.npz")])
    assert result.exit_code == 3 and "Traceback" not in result.output

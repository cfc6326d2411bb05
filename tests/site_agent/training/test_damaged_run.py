"""A damaged run folder (metrics.json, recorded preprocessing) is a one-line error, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gsco_common.errors import ModelError
from site_agent.cli.main import app
from site_agent.config import render_site_template
from site_agent.training.run_dir import CONFIG_FILE, METRICS_FILE, RunConfig, load_run, write_run_config
from specialist.task import TaskConfig
from specialist.training.config import TrainingConfig

runner = CliRunner()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A site with one run folder whose config.yaml is valid (no checkpoints: never reached)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "site.yaml").write_text(render_site_template("Site", "toy", ["a", "b"], "synthetic"))
    run = site / "runs" / "resnet18-1"
    run.mkdir(parents=True)
    config = RunConfig(
        run_id=run.name,
        created="2024-01-01T00:00:00Z",
        site_name="Site",
        task=TaskConfig(id="toy", labels=["a", "b"], modality="synthetic"),
        data={"path": str(tmp_path / "data.npz")},
        training=TrainingConfig(),
        model={
            "backbone": "resnet18",
            "num_classes": 2,
            "image_size": 28,
            "embedding_dim": 512,
            "preprocessing": {"input_size": 28},
        },
        device="cpu",
        class_counts={"train": [1, 1]},
    )
    write_run_config(run, config)
    (run / METRICS_FILE).write_text('{"status": "finished", "best_epoch": 1}')
    return run


def _break_preprocessing(run: Path, mean: object) -> None:
    raw = yaml.safe_load((run / CONFIG_FILE).read_text())
    raw["model"]["preprocessing"]["mean"] = mean
    (run / CONFIG_FILE).write_text(yaml.safe_dump(raw))


@pytest.mark.parametrize(
    "text", ['{"status": "fini', "[1, 2]", "\udcff"], ids=["truncated", "list", "binary"]
)
def test_a_damaged_metrics_json_is_a_model_error(run_dir: Path, text: str) -> None:
    (run_dir / METRICS_FILE).write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ModelError, match="the run folder is damaged: its metrics.json"):
        load_run(run_dir)


@pytest.mark.parametrize("mean", ["abc", 5, [0.5, 0.5]], ids=["text", "number", "two-values"])
def test_a_damaged_preprocessing_is_a_model_error(run_dir: Path, mean: object) -> None:
    _break_preprocessing(run_dir, mean)
    with pytest.raises(ModelError, match="the run folder is damaged: config.yaml"):
        load_run(run_dir)


@pytest.mark.parametrize("command", ["export", "evaluate"])
def test_export_and_evaluate_report_a_damaged_run(run_dir: Path, command: str) -> None:
    (run_dir / METRICS_FILE).write_text("{not json")
    result = runner.invoke(app, [command, str(run_dir)], env={"GSCO_KEY_PASSPHRASE": "a-long-passphrase"})
    assert result.exit_code == 4, result.output
    assert "error[GSCO-300]" in result.output and "re-train" in result.output
    assert "Traceback" not in result.output
    (run_dir / METRICS_FILE).write_text("{}")
    _break_preprocessing(run_dir, "abc")
    result = runner.invoke(app, [command, str(run_dir)])
    assert result.exit_code == 4 and "model.preprocessing" in result.output, result.output


@pytest.mark.parametrize("command", ["export", "evaluate", "publish"])
def test_a_folder_that_is_no_run_is_named_so_before_its_site_is_looked_for(
    tmp_path: Path, command: str
) -> None:
    missing = tmp_path / "runs" / "nosuch"
    result = runner.invoke(app, [command, str(missing)])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error[GSCO-100]: not a run folder (no config.yaml in {missing})",
        "hint: pass a folder from SITE_DIR/runs/",
    ]

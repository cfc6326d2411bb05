"""`site-agent train` through the real CLI: JSON output, precedence, errors, Ctrl-C and --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from site_agent.cli.main import app
from site_agent.config import render_site_template
from site_agent.data.synthetic import write_synthetic_npz

runner = CliRunner()
SITE_AGENT = Path(sys.executable).parent / "site-agent"


def _make_site(root: Path, **training: Any) -> Path:
    raw = yaml.safe_load(render_site_template("Test Site", "toy", ["normal", "abnormal"], "synthetic"))
    raw["training"].update(training)
    root.mkdir(parents=True)
    (root / "site.yaml").write_text(yaml.safe_dump(raw))
    return root


@pytest.fixture(scope="module")
def npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    print("[data] CLI training tests use generated synthetic data")
    return write_synthetic_npz(tmp_path_factory.mktemp("cli") / "toy.npz", n_per_class=24, val_per_class=6)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, npz: Path) -> tuple[Path, list[dict[str, Any]]]:
    site = _make_site(tmp_path_factory.mktemp("site") / "site", epochs=5, batch_size=8, image_size=64)
    args = ["train", "--site", str(site), "--data", str(npz), "--backbone", "resnet18,resnet10t"]
    result = runner.invoke(
        app, [*args, "--epochs", "2", "--image-size", "28", "--json"], env={"GSCO_DEVICE": "cpu"}
    )
    assert result.exit_code == 0, result.output
    return site, json.loads(result.stdout)


def test_json_lists_one_run_per_backbone(two_runs: tuple[Path, list[dict[str, Any]]]) -> None:
    site, runs = two_runs
    assert [run["backbone"] for run in runs] == ["resnet18", "resnet10t"]
    for run in runs:
        assert set(run) == {"run_dir", "backbone", "best_epoch", "val"}
        run_dir = Path(run["run_dir"])
        assert run_dir.parent == (site / "runs").resolve() and (run_dir / "checkpoints" / "best.pt").is_file()
        # The best epoch is the first with the highest validation balanced accuracy (the default
        # monitor, min_delta 0), read back from the run's own per-epoch history.
        history = json.loads((run_dir / "metrics.json").read_text())["history"]
        scores = [epoch["balanced_accuracy"] for epoch in history]
        assert len(history) == 2 and run["best_epoch"] == scores.index(max(scores)) + 1
        assert run["val"]["balanced_accuracy"] == history[run["best_epoch"] - 1]["balanced_accuracy"]
        assert {"accuracy", "balanced_accuracy", "macro_f1", "auc", "ece", "per_class"} <= set(run["val"])


def test_resolved_config_follows_flag_env_file_default(two_runs: tuple[Path, list[dict[str, Any]]]) -> None:
    _, runs = two_runs
    config = yaml.safe_load((Path(runs[0]["run_dir"]) / "config.yaml").read_text())
    assert config["training"]["epochs"] == 2  # flag over file (5)
    assert config["training"]["image_size"] == 28  # flag over file (64)
    assert config["training"]["batch_size"] == 8  # file over default (32)
    assert config["training"]["device"] == "cpu"  # environment over file / default (auto)
    assert config["training"]["lr"] == 0.001  # default


def test_plain_output_prints_run_dirs(tmp_path: Path, npz: Path) -> None:
    site = _make_site(tmp_path / "site", batch_size=8, image_size=28, epochs=1, device="cpu")
    args = ["train", "--site", str(site), "--data", str(npz), "--backbone", "resnet10t"]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    (run_dir,) = (site / "runs").iterdir()
    assert str(run_dir.resolve()) in result.stdout.replace("\n", "")
    assert "device: cpu" in result.stderr
    progress = result.stderr
    assert "resnet10t epoch 1/1" in progress and "loss " in progress and "img/s" in progress
    assert "val balanced_accuracy" in progress


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        ([], 2, "no training data"),
        (["--data", "DATA", "--backbone", "no_such_backbone_xyz"], 4, "no_such_backbone_xyz"),
        (["--data", "DATA", "--epochs", "0"], 2, "--epochs"),
        (["--data", "DATA", "--device", "tpu"], 2, "--device"),
        (["--data", "MISSING"], 3, "data.path does not exist"),
        (["--resume", "RUN", "--epochs", "3"], 2, "drop --epochs"),
        (["--data", "DATA", "--seed", str(2**64)], 2, "--seed"),
    ],
    ids=[
        "no-data",
        "unknown-backbone",
        "bad-epochs",
        "bad-device",
        "missing-data",
        "resume-with-flags",
        "huge-seed",
    ],
)
def test_errors_are_one_line_with_exit_codes(
    tmp_path: Path, npz: Path, extra: list[str], code: int, message: str
) -> None:
    site = _make_site(tmp_path / "site", device="cpu")
    replaced = [
        {"DATA": str(npz), "MISSING": str(tmp_path / "nope.npz"), "RUN": str(tmp_path)}.get(arg, arg)
        for arg in extra
    ]
    result = runner.invoke(app, ["train", "--site", str(site), *replaced])
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (site / "runs").exists() or not any((site / "runs").iterdir())


def test_missing_site_yaml_says_what_to_do(tmp_path: Path, npz: Path) -> None:
    result = runner.invoke(
        app, ["train", "--site", str(tmp_path), "--data", str(npz), "--backbone", "resnet18"]
    )
    assert result.exit_code == 2 and "site-agent init" in result.output


@pytest.mark.slow
def test_ctrl_c_leaves_a_checkpoint_that_resume_finishes(tmp_path: Path, npz: Path) -> None:
    site = _make_site(tmp_path / "site", batch_size=4, image_size=28, epochs=3, device="cpu")
    command = [str(SITE_AGENT), "train", "--site", str(site), "--data", str(npz), "--backbone", "resnet10t"]
    env = {**os.environ, "COLUMNS": "120"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 600
    checkpoints = list((site / "runs").glob("*/checkpoints/last.pt"))
    while not checkpoints and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        checkpoints = list((site / "runs").glob("*/checkpoints/last.pt"))
    assert checkpoints, "training never wrote its first checkpoint"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr.decode()
    run_dir = checkpoints[0].parents[1]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs_completed"] in (1, 2)
    assert "--resume" in stderr.decode()

    result = runner.invoke(app, ["train", "--resume", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)
    assert Path(summary["run_dir"]) == run_dir
    finished = json.loads((run_dir / "metrics.json").read_text())
    assert finished["status"] == "finished" and finished["epochs_completed"] == 3
    assert [record["epoch"] for record in finished["history"]] == [1, 2, 3]


def test_an_unreadable_data_folder_in_site_yaml_is_a_data_error(
    tmp_path: Path, make_image_folder: Any, deny_folder: Any
) -> None:
    root = make_image_folder({"normal": 6, "abnormal": 6})
    site = _make_site(tmp_path / "site", device="cpu")
    raw = yaml.safe_load((site / "site.yaml").read_text())
    (site / "site.yaml").write_text(yaml.safe_dump({**raw, "data": {"path": str(root)}}))
    deny_folder(root)
    result = runner.invoke(app, ["train", "--site", str(site)])
    assert result.exit_code == 3, result.output
    assert "a folder cannot be read" in result.output and "Traceback" not in result.output

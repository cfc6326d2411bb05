"""Full runs on tiny data: folder layout, best checkpoint, early stopping, determinism and exact resume."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from gsco_common.errors import ConfigError, DataError
from registry.bundle.preprocess import Preprocessing
from site_agent.config import SiteConfig
from site_agent.data.config import DataConfig
from site_agent.data.loader import load_site_data
from site_agent.data.synthetic import write_synthetic_npz
from site_agent.training.run_dir import load_model, load_run
from site_agent.training.trainer import RunResult, resume_run, train_run
from specialist.data import SiteData
from specialist.training.callbacks import Callback, EpochInfo, StepInfo
from specialist.training.checkpoint import load_checkpoint
from specialist.training.config import EarlyStoppingConfig, TrainingConfig

TIMING_KEYS = {"seconds", "images_per_s"}


class InterruptAt(Callback):
    """Raises KeyboardInterrupt like Ctrl-C would, after a given step or epoch (0-based epoch)."""

    def __init__(self, epoch: int, step: int | None = None) -> None:
        self.epoch = epoch
        self.step = step

    def on_step_end(self, info: StepInfo) -> None:
        if self.step is not None and (info.epoch, info.step) == (self.epoch, self.step):
            raise KeyboardInterrupt

    def on_epoch_end(self, info: EpochInfo) -> None:
        if self.step is None and info.epoch == self.epoch:
            raise KeyboardInterrupt


def _train(
    tmp: Path,
    site: SiteConfig,
    data: DataConfig,
    site_data: SiteData,
    training: TrainingConfig,
    callbacks: list[Callback] | None = None,
) -> RunResult:
    return train_run(tmp, site, data, "resnet18", training, site_data=site_data, callbacks=callbacks or [])


Trainer = Callable[..., RunResult]


@pytest.fixture
def trainer(
    tmp_path: Path,
    site_config: SiteConfig,
    tiny_data: DataConfig,
    tiny_site_data: SiteData,
    fast_training: TrainingConfig,
) -> Trainer:
    """``train(training=None, callbacks=None)``: a run on the tiny data under ``tmp_path``."""

    def train(training: TrainingConfig | None = None, callbacks: list[Callback] | None = None) -> RunResult:
        return _train(tmp_path, site_config, tiny_data, tiny_site_data, training or fast_training, callbacks)

    return train


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def _history(run_dir: Path) -> list[dict[str, Any]]:
    history = json.loads((run_dir / "metrics.json").read_text())["history"]
    return [{k: v for k, v in record.items() if k not in TIMING_KEYS} for record in history]


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [name for name in a if not torch.equal(a[name], b[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def straight(
    tmp_path_factory: pytest.TempPathFactory,
    site_config: SiteConfig,
    tiny_data: DataConfig,
    tiny_site_data: SiteData,
    fast_training: TrainingConfig,
) -> RunResult:
    return _train(tmp_path_factory.mktemp("straight"), site_config, tiny_data, tiny_site_data, fast_training)


def test_run_folder_layout_and_contents(straight: RunResult, fast_training: TrainingConfig) -> None:
    run_dir = straight.run_dir
    assert run_dir.parent.name == "runs"
    for name in ("config.yaml", "train.log", "metrics.json", "confusion_matrix.png", "roc.png"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    assert (run_dir / "roc.png").read_bytes()[:4] == b"\x89PNG"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["training"]["epochs"] == 2 and config["training"]["image_size"] == 28
    assert config["training"]["backbones"] == ["resnet18"]
    assert config["model"]["backbone"] == "resnet18" and config["device"] == "cpu"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["epochs_completed"] == 2
    assert metrics["monitor"] == "balanced_accuracy"
    assert [record["epoch"] for record in metrics["history"]] == [1, 2]
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "auc", "ece", "per_class", "confusion_matrix"):
        assert key in metrics["val"] and key in metrics["test"]
    assert set(metrics["class_counts"]) == {"train", "val", "test"}
    assert metrics["images"] == {"seen": 80, "skipped": 0}
    assert metrics["privacy"] is None and config["training"]["dp"]["enabled"] is False
    log = (run_dir / "train.log").read_text()
    assert "device: cpu" in log and "epoch 2/2" in log and "finished" in log


def test_best_checkpoint_is_the_best_validation_epoch(straight: RunResult) -> None:
    metrics = json.loads((straight.run_dir / "metrics.json").read_text())
    values = [record["balanced_accuracy"] for record in metrics["history"]]
    best = load_checkpoint(straight.run_dir / "checkpoints" / "best.pt")
    assert best["epoch"] == metrics["best_epoch"] == values.index(max(values)) + 1
    assert metrics["val"]["balanced_accuracy"] == pytest.approx(max(values))
    model = load_model(straight.run_dir)
    assert not model.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, best["model"][name])


def test_load_run_exposes_what_export_and_federation_need(
    straight: RunResult, tiny_site_data: SiteData
) -> None:
    info = load_run(straight.run_dir)
    assert info.backbone == "resnet18" and info.num_classes == 2 and info.image_size == 28
    assert info.label_names == ("normal", "abnormal") and info.task_id == "toy-task"
    assert info.modality == "synthetic test images" and info.site_name == "Test Site"
    assert isinstance(info.preprocessing, Preprocessing) and info.preprocessing.input_size == 28
    assert info.seed == 0 and info.epochs == 2 and info.epochs_completed == 2 and info.finished
    assert info.best_epoch == straight.best_epoch
    assert info.val_metrics["accuracy"] == straight.val["accuracy"]
    assert info.test_metrics is not None and info.embedding_dim == 512
    assert info.class_counts["val"] == tiny_site_data.split("val").class_counts(2)
    assert info.data.path.name == "tiny.npz" and info.training.batch_size == 16


def test_same_seed_gives_identical_weights_and_metrics(straight: RunResult, trainer: Trainer) -> None:
    again = trainer()
    _assert_same_weights(_weights(straight.run_dir), _weights(again.run_dir))
    assert _history(straight.run_dir) == _history(again.run_dir)
    assert again.val == straight.val


def test_another_seed_gives_other_weights(
    straight: RunResult, trainer: Trainer, fast_training: TrainingConfig
) -> None:
    other = trainer(fast_training.model_copy(update={"seed": 1}))  # only the seed differs
    first = _weights(straight.run_dir)
    assert any(not torch.equal(first[name], tensor) for name, tensor in _weights(other.run_dir).items())


@pytest.mark.parametrize(
    "interrupt",
    [InterruptAt(epoch=0), InterruptAt(epoch=1, step=2)],
    ids=["after-epoch-1", "mid-epoch-2"],
)
def test_interrupt_then_resume_equals_the_straight_run(
    interrupt: InterruptAt,
    straight: RunResult,
    trainer: Trainer,
    tmp_path: Path,
    tiny_site_data: SiteData,
) -> None:
    with pytest.raises(KeyboardInterrupt):
        trainer(callbacks=[interrupt])
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "interrupted"
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    expected_position = (1, 0) if interrupt.step is None else (1, 2)
    assert (state["position"]["epoch"], state["position"]["next_step"]) == expected_position
    assert load_run(run_dir).status == "interrupted"

    resumed = resume_run(run_dir, site_data=tiny_site_data)
    assert resumed.run_dir == run_dir
    _assert_same_weights(_weights(straight.run_dir), _weights(run_dir))
    assert _history(run_dir) == _history(straight.run_dir)
    assert resumed.val == straight.val
    straight_opt = load_checkpoint(straight.run_dir / "checkpoints" / "last.pt")["optimizer"]["state"]
    resumed_opt = load_checkpoint(run_dir / "checkpoints" / "last.pt")["optimizer"]["state"]
    assert all(torch.equal(straight_opt[k]["exp_avg"], resumed_opt[k]["exp_avg"]) for k in straight_opt)
    assert "resuming at epoch" in (run_dir / "train.log").read_text()


def test_resume_refuses_a_finished_run_and_changed_data(
    straight: RunResult, trainer: Trainer, tmp_path: Path, tiny_site_data: SiteData
) -> None:
    with pytest.raises(ConfigError, match="already finished"):
        resume_run(straight.run_dir, site_data=tiny_site_data)
    with pytest.raises(KeyboardInterrupt):
        trainer(callbacks=[InterruptAt(epoch=0)])
    (run_dir,) = (tmp_path / "runs").iterdir()
    other = write_synthetic_npz(tmp_path / "other.npz", n_per_class=30, val_per_class=6)
    with pytest.raises(DataError, match="differs"):
        resume_run(run_dir, site_data=load_site_data(DataConfig(path=other), ["normal", "abnormal"], 0))


def test_early_stopping_stops_and_keeps_the_best(trainer: Trainer, fast_training: TrainingConfig) -> None:
    impossible = EarlyStoppingConfig(monitor="balanced_accuracy", patience=1, min_delta=1.0)
    training = fast_training.model_copy(update={"epochs": 6, "early_stopping": impossible})
    result = trainer(training)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["stopped_early"] is True
    assert metrics["epochs_completed"] == 2 and metrics["best_epoch"] == 1
    assert "early stopping" in (result.run_dir / "train.log").read_text()


def test_images_skipped_at_import_are_counted_in_the_run_report(
    tmp_path: Path,
    site_config: SiteConfig,
    tiny_data: DataConfig,
    tiny_site_data: SiteData,
    fast_training: TrainingConfig,
) -> None:
    # as load_site_data leaves it when 2 of 82 files were unreadable or degenerate
    with_skips = dataclasses.replace(tiny_site_data, skipped=[5, 40], total_seen=82)
    one_epoch = fast_training.model_copy(update={"epochs": 1})
    result = _train(tmp_path, site_config, tiny_data, with_skips, one_epoch)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["images"] == {"seen": 82, "skipped": 2}


def test_a_horizontal_flip_for_chest_xrays_is_refused_before_a_run_folder_exists(
    tmp_path: Path, site_config: SiteConfig, tiny_data: DataConfig, tiny_site_data: SiteData
) -> None:
    task = site_config.task.model_copy(update={"modality": "paediatric chest X-ray"})
    chest = site_config.model_copy(update={"task": task})
    training = TrainingConfig(image_size=28, epochs=1, device="cpu", augmentation={"hflip": True})
    with pytest.raises(ConfigError, match="training.augmentation.hflip"):
        train_run(tmp_path, chest, tiny_data, "resnet18", training, site_data=tiny_site_data)
    assert not (tmp_path / "runs").exists()


def test_the_run_records_its_recipe_and_trains_with_the_recipes_settings(
    tmp_path: Path, site_config: SiteConfig, tiny_data: DataConfig, tiny_site_data: SiteData
) -> None:
    training = TrainingConfig(image_size=28, epochs=1, batch_size=16, device="cpu", lr=2e-3, recipe="vgg")
    result = train_run(tmp_path, site_config, tiny_data, "resnet18", training, site_data=tiny_site_data)
    recorded = load_run(result.run_dir).training
    assert recorded.recipe == "vgg" and recorded.lr == pytest.approx(2e-4)
    # the schedule peaked at the recipe's rate: after one epoch it sits on the cosine below 2e-4
    assert 0 < json.loads((result.run_dir / "metrics.json").read_text())["history"][0]["lr"] < 2e-4
    # flips were resolved from task.modality (unknown here: none) before they were recorded
    assert (recorded.augmentation.hflip, recorded.augmentation.vflip) == (False, False)

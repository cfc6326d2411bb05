"""The run folder ``SITE_DIR/runs/<run-id>/`` and how other steps (evaluate, export, publish) read it.

Layout::

    config.yaml              resolved configuration (RunConfig): task, data, training, model
    train.log                what happened, in order (device, data sizes, epochs, interruptions)
    checkpoints/last.pt      full training state, rewritten atomically every epoch and on Ctrl-C
    checkpoints/best.pt      model weights of the best validation epoch
    metrics.json             status, history per epoch, best validation (and test) metrics
    confusion_matrix.png     validation confusion matrix of the best model
    roc.png                  validation ROC of the best model
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from gsco_common.errors import ConfigError, DataError, ModelError
from registry.bundle.preprocess import Preprocessing
from site_agent.config import format_validation_error
from site_agent.data.config import DataConfig
from specialist.models.factory import create_specialist
from specialist.models.specialist import Specialist
from specialist.task import TaskConfig
from specialist.training.checkpoint import load_checkpoint
from specialist.training.config import TrainingConfig
from specialist.training.dp import make_dp_compatible

CONFIG_FILE = "config.yaml"
LOG_FILE = "train.log"
METRICS_FILE = "metrics.json"
CHECKPOINTS = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"
CONFUSION_PNG = "confusion_matrix.png"
ROC_PNG = "roc.png"


class ModelSpec(BaseModel):
    """What rebuilds the network: ``create_specialist(backbone, num_classes, image_size)``."""

    model_config = ConfigDict(extra="forbid")

    backbone: str
    num_classes: int
    image_size: int
    embedding_dim: int
    preprocessing: dict[str, Any]
    pretrained: dict[str, str] | None = None
    """``{"file", "sha256"}`` of the local weights file the backbone started from."""


class RunConfig(BaseModel):
    """``config.yaml`` of a run: everything resolved (flags, environment, site.yaml, defaults)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    created: str
    site_name: str
    task: TaskConfig
    data: DataConfig
    training: TrainingConfig
    model: ModelSpec
    device: str
    class_counts: dict[str, list[int]]
    training_set_digest: str | None = None


def new_run_id(backbone: str) -> str:
    """``<backbone>-<UTC time>-<random>``: sortable by time and unique even within one second."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", backbone)
    return f"{safe}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def checkpoint_path(run_dir: Path, which: str) -> Path:
    return run_dir / CHECKPOINTS / which


def write_run_config(run_dir: Path, config: RunConfig) -> None:
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    (run_dir / CONFIG_FILE).write_text(text, encoding="utf-8")


def require_run_folder(run_dir: Path) -> None:
    """Refuse a folder that is not a training run (checked first, before its site is looked for)."""
    if not (run_dir / CONFIG_FILE).is_file():
        raise ConfigError(
            f"not a run folder (no {CONFIG_FILE} in {run_dir})", hint="pass a folder from SITE_DIR/runs/"
        )


def read_run_config(run_dir: Path) -> RunConfig:
    require_run_folder(run_dir)
    path = run_dir / CONFIG_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return RunConfig.model_validate(raw)
    except yaml.YAMLError:
        raise ConfigError("the run's config.yaml is not valid YAML") from None
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "the run's config.yaml")) from None


def read_metrics(run_dir: Path) -> dict[str, Any]:
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return {}
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _damaged(f"its {METRICS_FILE} cannot be read ({type(exc).__name__})") from None
    if not isinstance(metrics, dict):
        raise _damaged(f"its {METRICS_FILE} is not a JSON object")
    return metrics


def _damaged(what: str) -> ModelError:
    return ModelError(f"the run folder is damaged: {what}", hint="re-train the run or restore the folder")


def recorded_preprocessing(config: RunConfig) -> Preprocessing:
    """The preprocessing ``config.yaml`` records; a damaged entry is a :class:`ModelError`."""
    try:
        return Preprocessing.from_dict(config.model.preprocessing)
    except DataError as exc:  # Preprocessing's own checks (a key and what is wrong with it)
        raise _damaged(f"config.yaml model.{exc.message}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise _damaged(f"config.yaml has an invalid model.preprocessing ({type(exc).__name__})") from None


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    tmp = run_dir / f".{METRICS_FILE}.tmp"
    tmp.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    tmp.replace(run_dir / METRICS_FILE)


@dataclass(frozen=True)
class RunInfo:
    """A run as the later steps need it (export, model card, publish, federation).

    ``metrics`` is the whole ``metrics.json`` (``status``, ``history``, ``val``, ``test``,
    ``class_counts``...); ``val_metrics`` / ``test_metrics`` are the best model's metrics.
    Epoch numbers are 1-based.
    """

    run_dir: Path
    run_id: str
    site_name: str
    task: TaskConfig
    task_id: str
    modality: str
    label_names: tuple[str, ...]
    backbone: str
    num_classes: int
    image_size: int
    embedding_dim: int
    preprocessing: Preprocessing
    seed: int
    epochs: int
    epochs_completed: int
    best_epoch: int | None
    status: str
    metrics: dict[str, Any]
    data: DataConfig
    training: TrainingConfig
    class_counts: dict[str, list[int]]
    training_set_digest: str | None = None
    pretrained: dict[str, str] | None = None

    @property
    def val_metrics(self) -> dict[str, Any]:
        return self.metrics.get("val") or {}

    @property
    def test_metrics(self) -> dict[str, Any] | None:
        return self.metrics.get("test")

    @property
    def finished(self) -> bool:
        return self.status == "finished"


def load_run(run_dir: Path) -> RunInfo:
    """Read ``config.yaml`` and ``metrics.json`` of a run folder."""
    config = read_run_config(run_dir)
    metrics = read_metrics(run_dir)
    return RunInfo(
        run_dir=run_dir,
        run_id=config.run_id,
        site_name=config.site_name,
        task=config.task,
        task_id=config.task.id,
        modality=config.task.modality,
        label_names=tuple(config.task.labels),
        backbone=config.model.backbone,
        num_classes=config.model.num_classes,
        image_size=config.model.image_size,
        embedding_dim=config.model.embedding_dim,
        preprocessing=recorded_preprocessing(config),
        seed=config.training.seed,
        epochs=config.training.epochs,
        epochs_completed=int(metrics.get("epochs_completed", 0)),
        best_epoch=metrics.get("best_epoch"),
        status=str(metrics.get("status", "created")),
        metrics=metrics,
        data=config.data,
        training=config.training,
        class_counts=config.class_counts,
        training_set_digest=config.training_set_digest,
        pretrained=config.model.pretrained,
    )


def build_model(config: RunConfig) -> Specialist:
    """The run's architecture with fresh weights (no pretrained file: a checkpoint follows)."""
    recorded = recorded_preprocessing(config)
    model = create_specialist(
        config.model.backbone,
        config.model.num_classes,
        config.model.image_size,
        pretrained=False,
        resize=recorded.resize,
    )
    if model.preprocessing.to_dict() != recorded.to_dict():
        raise ModelError(
            f"backbone {config.model.backbone!r} now builds with different preprocessing than this run",
            hint="use the site-agent version that trained the run",
        )
    return make_dp_compatible(model) if config.training.dp.enabled else model


def load_model(run_dir: Path, which: str = BEST) -> Specialist:
    """The run's best model (``checkpoints/best.pt``), on CPU, in eval mode."""
    config = read_run_config(run_dir)
    model = build_model(config)
    state = load_checkpoint(checkpoint_path(run_dir, which))
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as exc:
        raise ModelError(f"checkpoint {which} does not match the run's model") from exc
    return model.eval()

"""Train one specialist into a run folder (``site-agent train``) and continue it (``--resume``).

Every epoch ends with validation, the best checkpoint (by the monitored metric), an atomic
``last.pt`` holding the complete training state and an updated ``metrics.json``. Ctrl-C, or a
callback raising :class:`KeyboardInterrupt`, stops after the current step and writes ``last.pt``
at that exact position, so ``resume_run`` reproduces the uninterrupted run bit for bit.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gsco_common.errors import ConfigError, DataError, GscoError
from site_agent.config import SiteConfig, runs_dir
from site_agent.data.config import DataConfig
from site_agent.data.loader import load_site_data
from site_agent.evaluation.plots import plot_confusion_matrix, plot_roc
from site_agent.training.run_dir import (
    BEST,
    CONFUSION_PNG,
    LAST,
    LOG_FILE,
    ROC_PNG,
    ModelSpec,
    RunConfig,
    build_model,
    checkpoint_path,
    new_run_id,
    read_run_config,
    write_metrics,
    write_run_config,
)
from specialist.data import SiteData
from specialist.inputs import PreparedImages
from specialist.metrics import compute_metrics, nll_per_example
from specialist.models.factory import create_specialist
from specialist.models.specialist import Specialist
from specialist.predict import predict
from specialist.training.augment import Augmenter
from specialist.training.callbacks import Callback, EpochInfo, HardInterrupt, StopSignal, graceful_interrupts
from specialist.training.checkpoint import (
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_atomic,
    seed_everything,
)
from specialist.training.config import TrainingConfig
from specialist.training.device import describe_device, select_device
from specialist.training.dp import make_dp_compatible, make_private, plan_dp
from specialist.training.effective import effective_training
from specialist.training.loop import (
    EpochProgress,
    LoopParts,
    epoch_batches,
    make_loss,
    make_optimizer,
    run_epoch,
)
from specialist.training.recipes import RECIPES
from specialist.training.schedule import warmup_cosine

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
SCALAR_KEYS = ("accuracy", "balanced_accuracy", "macro_f1", "auc", "ece")


@dataclass
class RunResult:
    """What ``site-agent train`` reports per backbone."""

    run_dir: Path
    backbone: str
    best_epoch: int | None
    status: str
    val: dict[str, Any]
    test: dict[str, Any] | None

    def summary(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "backbone": self.backbone,
            "best_epoch": self.best_epoch,
            "val": self.val,
        }


@contextmanager
def run_logging(run_dir: Path) -> Iterator[None]:
    """Send the ``site_agent`` loggers to ``train.log`` of the run while the block runs."""
    handler = logging.FileHandler(run_dir / LOG_FILE, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package_logger = logging.getLogger("site_agent")
    previous_level = package_logger.level
    package_logger.addHandler(handler)
    if package_logger.getEffectiveLevel() > logging.INFO:
        package_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)
        handler.close()


class _Run:
    """One run's model, data, optimizer state and bookkeeping."""

    def __init__(
        self,
        run_dir: Path,
        config: RunConfig,
        site_data: SiteData,
        model: Specialist,
        callbacks: Sequence[Callback],
    ) -> None:
        training = config.training
        self.run_dir = run_dir
        self.config = config
        self.training = training
        self.callbacks = list(callbacks)
        self.label_names = tuple(config.task.labels)
        self.device = select_device(training.device)
        # Opacus' per-image gradients and the fp16 grad scaler do not mix: DP runs in fp32
        self.amp = training.amp and self.device.type == "cuda" and not training.dp.enabled
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        self.model = model.to(self.device)
        # what the data import refused (unreadable, NaN, constant, < 2x2): counts only, never paths
        self.images = {"seen": site_data.total_seen, "skipped": len(site_data.skipped)}
        preprocessing = model.preprocessing
        self.train_data = PreparedImages(site_data.split("train"), preprocessing, training.cache_mb)
        self.val_data = PreparedImages(site_data.split("val"), preprocessing, training.cache_mb)
        test = site_data.splits.get("test")
        self.test_split = test if test is not None and len(test) else None
        optimizer = make_optimizer(model, training.lr, training.weight_decay)
        private = None
        if training.dp.enabled:
            plan = plan_dp(training.dp, len(self.train_data), training.batch_size, training.epochs)
            private = make_private(self.model, optimizer, training.dp, plan)
            self.steps_per_epoch = plan.steps_per_epoch
        else:
            self.steps_per_epoch = len(
                epoch_batches(len(self.train_data), training.batch_size, training.seed, 0)
            )
        self.parts = LoopParts(
            model=self.model,
            optimizer=optimizer,
            loss_fn=make_loss(self.train_data.labels, len(self.label_names), training, self.device),
            device=self.device,
            augmenter=Augmenter(training.augmentation, preprocessing, modality=config.task.modality),
            scheduler=warmup_cosine(
                optimizer,
                self.steps_per_epoch * training.epochs,
                training.warmup_fraction,
                training.min_lr_ratio,
            ),
            scaler=torch.amp.GradScaler(self.device.type, enabled=self.amp) if self.amp else None,
            amp=self.amp,
            private=private,
        )
        self.position = EpochProgress.start(0, training.seed)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.stale_epochs = 0
        self.stopped_early = False
        self.best_val_probs: np.ndarray | None = None  # kept when the best epoch ran in this process

    # -- checkpoint state ---------------------------------------------------------------------
    def state_dict(self, finished: bool = False) -> dict[str, Any]:
        parts = self.parts
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": parts.optimizer.state_dict(),
            "scheduler": parts.scheduler.state_dict() if parts.scheduler is not None else None,
            "scaler": parts.scaler.state_dict() if parts.scaler is not None else None,
            "position": self.position.state_dict(),
            "rng": capture_rng(),
            "history": self.history,
            "best": self.best,
            "stale_epochs": self.stale_epochs,
            "stopped_early": self.stopped_early,
            "finished": finished,
            "dp": self.parts.private.guard.state_dict() if self.parts.private is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ConfigError("last.pt was written by an incompatible site-agent version; cannot resume")
        self.model.load_state_dict(state["model"])
        self.parts.optimizer.load_state_dict(state["optimizer"])
        if self.parts.scheduler is not None and state["scheduler"] is not None:
            self.parts.scheduler.load_state_dict(state["scheduler"])
        if self.parts.scaler is not None and state["scaler"] is not None:
            self.parts.scaler.load_state_dict(state["scaler"])
        self.position = EpochProgress.from_state_dict(state["position"])
        self.history = list(state["history"])
        self.best = state["best"]
        self.stale_epochs = int(state["stale_epochs"])
        self.stopped_early = bool(state["stopped_early"])
        if self.parts.private is not None:
            self.parts.private.guard.load_state_dict(state["dp"])
        restore_rng(state["rng"])

    def save_last(self, finished: bool = False) -> None:
        save_atomic(self.state_dict(finished), checkpoint_path(self.run_dir, LAST))

    # -- metrics ------------------------------------------------------------------------------
    def _metrics_document(self, status: str, val: dict[str, Any] | None, test: dict[str, Any] | None) -> dict:
        return {
            "status": status,
            "monitor": self.training.early_stopping.monitor,
            "epochs_planned": self.training.epochs,
            "epochs_completed": len(self.history),
            "best_epoch": self.best["epoch"] if self.best else None,
            "stopped_early": self.stopped_early,
            "val": val,
            "test": test,
            "history": self.history,
            "class_counts": self.config.class_counts,
            "images": self.images,
            "training_seconds": round(sum(record["seconds"] for record in self.history), 3),
            "device": self.config.device,
            "privacy": self.parts.private.guard.report() if self.parts.private is not None else None,
        }

    def _improved(self, value: float | None) -> bool:
        if self.best is None:
            return True
        best = self.best["value"]
        if value is None:
            return False
        if best is None:
            return True
        delta = self.training.early_stopping.min_delta
        if self.training.early_stopping.monitor == "loss":
            return value < best - delta
        return value > best + delta

    def _evaluate(self, data: PreparedImages) -> tuple[dict[str, Any], np.ndarray]:
        probs, _ = predict(
            self.model, data, self.model.preprocessing, batch_size=self.training.batch_size * 2
        )
        metrics = compute_metrics(data.labels, probs, self.label_names)
        metrics["loss"] = float(np.mean(nll_per_example(probs, data.labels)))
        return metrics, probs

    def _end_epoch(self, progress: EpochProgress) -> None:
        val, val_probs = self._evaluate(self.val_data)
        monitor = self.training.early_stopping.monitor
        value = val[monitor]
        improved = self._improved(value)
        number = progress.epoch + 1
        record = {
            "epoch": number,
            "train_loss": progress.mean_loss,
            "val_loss": val["loss"],
            **{key: val[key] for key in SCALAR_KEYS},
            "lr": float(self.parts.optimizer.param_groups[0]["lr"]),
            "images_per_s": round(progress.images_per_s, 2),
            "seconds": round(progress.seconds, 3),
        }
        self.history.append(record)
        if improved:
            self.best = {"epoch": number, "value": value, "val": val}
            self.best_val_probs = val_probs
            self.stale_epochs = 0
            save_atomic(
                {"model": self.model.state_dict(), "epoch": number, "monitor": monitor, "value": value},
                checkpoint_path(self.run_dir, BEST),
            )
        else:
            self.stale_epochs += 1
            self.stopped_early = self.stale_epochs >= self.training.early_stopping.patience
        self.position = EpochProgress.start(progress.epoch + 1, self.training.seed)
        self.save_last()
        write_metrics(self.run_dir, self._metrics_document("running", self.best["val"], None))
        log.info(
            "epoch %d/%d: train loss %.4f, val loss %.4f, val %s %s%s, %.1f images/s",
            number,
            self.training.epochs,
            record["train_loss"],
            record["val_loss"],
            monitor,
            "n/a" if value is None else f"{value:.4f}",
            " (best)" if improved else "",
            record["images_per_s"],
        )
        if self.stopped_early:
            log.info("early stopping: no %s improvement for %d epochs", monitor, self.stale_epochs)
        info = EpochInfo(
            epoch=progress.epoch,
            epochs=self.training.epochs,
            train_loss=record["train_loss"],
            images_per_s=record["images_per_s"],
            val=val,
            monitor=monitor,
            monitor_value=value,
            improved=improved,
        )
        for callback in self.callbacks:
            callback.on_epoch_end(info)

    def _finish(self) -> RunResult:
        best_state = load_checkpoint(checkpoint_path(self.run_dir, BEST))
        self.model.load_state_dict(best_state["model"])
        if self.best is not None and self.best_val_probs is not None:
            val, val_probs = self.best["val"], self.best_val_probs
        else:
            val, val_probs = self._evaluate(self.val_data)
        test = None
        if self.test_split is not None:
            test_data = PreparedImages(self.test_split, self.model.preprocessing, self.training.cache_mb)
            test, _ = self._evaluate(test_data)
        plot_confusion_matrix(val["confusion_matrix"], self.label_names, self.run_dir / CONFUSION_PNG)
        plot_roc(self.val_data.labels, val_probs, self.label_names, self.run_dir / ROC_PNG)
        write_metrics(self.run_dir, self._metrics_document("finished", val, test))
        self.save_last(finished=True)
        log.info("finished: best epoch %s, val %s", self.best["epoch"] if self.best else None, _scalars(val))
        return RunResult(
            run_dir=self.run_dir,
            backbone=self.config.model.backbone,
            best_epoch=self.best["epoch"] if self.best else None,
            status="finished",
            val=val,
            test=test,
        )

    # -- the loop -----------------------------------------------------------------------------
    @property
    def _exhausted(self) -> bool:
        """True once the DP budget allowed no further step (training then ends)."""
        private = self.parts.private
        if private is not None and private.guard.exhausted:
            log.info(
                "DP budget reached: epsilon %.3f of %.3f", private.guard.spent(), self.training.dp.epsilon
            )
            return True
        return False

    def fit(self) -> RunResult:
        training = self.training
        log.info(describe_device(self.device, self.amp))
        log.info(
            "training %s (%d classes, %d px) on %d images, validating on %d; %d steps per epoch",
            self.config.model.backbone,
            len(self.label_names),
            self.config.model.image_size,
            len(self.train_data),
            len(self.val_data),
            self.steps_per_epoch,
        )
        for callback in self.callbacks:
            callback.on_train_start(training.epochs, self.steps_per_epoch, self.position.epoch)
        stop = StopSignal()
        try:
            with graceful_interrupts(stop):
                while (
                    self.position.epoch < training.epochs and not self.stopped_early and not self._exhausted
                ):
                    progress = run_epoch(
                        self.parts,
                        self.train_data,
                        training.batch_size,
                        training.seed,
                        self.position,
                        self.callbacks,
                        stop,
                    )
                    self._end_epoch(progress)
        except HardInterrupt:
            log.warning("interrupted twice: kept the checkpoint of the last finished epoch")
            raise
        except KeyboardInterrupt:
            self.save_last()
            best = self.best["val"] if self.best else None
            write_metrics(self.run_dir, self._metrics_document("interrupted", best, None))
            log.warning(
                "interrupted in epoch %d after step %d; continue with `site-agent train --resume %s`",
                self.position.epoch + 1,
                self.position.next_step,
                self.run_dir,
            )
            raise
        finally:
            for callback in self.callbacks:
                callback.on_train_end()
        return self._finish()


def _scalars(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{key} {metrics[key]:.4f}" for key in SCALAR_KEYS if metrics.get(key) is not None)


def train_run(
    site_dir: Path,
    site: SiteConfig,
    data: DataConfig,
    backbone: str,
    training: TrainingConfig,
    *,
    site_data: SiteData | None = None,
    callbacks: Sequence[Callback] = (),
) -> RunResult:
    """Train ``backbone`` on the site's data into a new ``SITE_DIR/runs/<run-id>/``.

    ``training`` is the resolved configuration (site.yaml, environment and flags already merged);
    ``site_data`` may be passed to share one loaded dataset between several backbones.
    """
    # the effective settings, recorded in config.yaml (or refused before a run folder exists)
    training = effective_training(backbone, training, site.task.modality)
    recipe = RECIPES[training.recipe]
    labels = site.task.labels
    if site_data is None:
        site_data = load_site_data(data, labels, training.seed)
    device = select_device(training.device)
    if training.num_threads is not None:
        torch.set_num_threads(training.num_threads)
    run_dir = runs_dir(site_dir) / new_run_id(backbone)
    (run_dir / "checkpoints").mkdir(parents=True)
    try:
        with run_logging(run_dir):
            seed_everything(training.seed)
            model = create_specialist(
                backbone,
                len(labels),
                training.image_size,
                training.weights_dir,
                resize=training.resize,
                weights_sha256=training.weights_sha256,
            )
            recipe.init_head(model)
            log.info("recipe %s: %s", recipe.name, recipe.values())
        if training.dp.enabled:
            model = make_dp_compatible(model)
    except GscoError:
        shutil.rmtree(run_dir)  # refused (weights, DP) before anything was trained: leave no run folder
        raise
    with run_logging(run_dir):
        config = RunConfig(
            run_id=run_dir.name,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            site_name=site.name,
            task=site.task,
            data=data,
            training=training,
            model=ModelSpec(
                backbone=model.backbone,
                num_classes=model.num_classes,
                image_size=model.image_size,
                embedding_dim=model.embedding_dim,
                preprocessing=model.preprocessing.to_dict(),
                pretrained=model.pretrained,
            ),
            device=str(device),
            class_counts={name: split.class_counts(len(labels)) for name, split in site_data.splits.items()},
            training_set_digest=data.training_set_digest(),
        )
        write_run_config(run_dir, config)
        log.info("run %s: data kind %s, class counts %s", run_dir.name, site_data.kind, config.class_counts)
        return _Run(run_dir, config, site_data, model, callbacks).fit()


def resume_run(
    run_dir: Path, *, site_data: SiteData | None = None, callbacks: Sequence[Callback] = ()
) -> RunResult:
    """Continue an interrupted run exactly where its ``last.pt`` stopped."""
    config = read_run_config(run_dir)
    state = load_checkpoint(checkpoint_path(run_dir, LAST))
    if state.get("finished"):
        raise ConfigError("this run already finished; there is nothing to resume", hint="start a new run")
    training = config.training
    if site_data is None:
        site_data = load_site_data(config.data, config.task.labels, training.seed)
    counts = {name: split.class_counts(len(config.task.labels)) for name, split in site_data.splits.items()}
    if counts != config.class_counts:
        raise DataError(
            "the data differs from the data this run started on; cannot resume exactly",
            hint="restore the original data or start a new run",
        )
    if training.num_threads is not None:
        torch.set_num_threads(training.num_threads)
    with run_logging(run_dir):
        run = _Run(run_dir, config, site_data, build_model(config), callbacks)
        run.load_state_dict(state)
        log.info("resuming at epoch %d, step %d", run.position.epoch + 1, run.position.next_step)
        return run.fit()

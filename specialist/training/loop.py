"""The one training loop: used by ``site-agent train`` (via :mod:`.trainer`) and the federation ClientApp.

:func:`run_epoch` trains one epoch (resumable at any step); :func:`train_local` trains a given model
for N local epochs on one split, optionally with the FedProx proximal term. Data order and
augmentation draw from generators derived from ``(seed, epoch)``, so a run is reproducible and a
resumed run sees exactly the batches the uninterrupted one would have seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from gsco_common.errors import ConfigError, ModelError
from registry.bundle.preprocess import Preprocessing
from specialist.data import LabelledImages
from specialist.inputs import PreparedImages
from specialist.models.specialist import Specialist
from specialist.predict import model_device
from specialist.training.augment import Augmenter
from specialist.training.callbacks import Callback, StepInfo, StopSignal
from specialist.training.config import TrainingConfig
from specialist.training.dp import BudgetGuard, PrivateTraining, make_private, poisson_batches


def derived_seed(seed: int, epoch: int, stream: int) -> int:
    """Seed of one random stream (0: data order, 1: augmentation) of one epoch."""
    return (seed * 1_000_003 + epoch * 7 + stream) % (2**63)


def epoch_batches(num_images: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The shuffled batches of one epoch; a trailing batch of one image is dropped (batch norm)."""
    order = torch.randperm(num_images, generator=torch.Generator().manual_seed(derived_seed(seed, epoch, 0)))
    batches = list(torch.split(order, batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    return batches


CLASS_WEIGHT_POWER = {"balanced": 1.0, "sqrt": 0.5, "none": 0.0}


def class_weights(labels: np.ndarray, num_classes: int, mode: str = "balanced") -> torch.Tensor:
    """Per-class loss weights proportional to ``count_c ** -p`` (p = 1 balanced, 0.5 sqrt, 0 none).

    Scaled so that the average weight over the training images is 1 (``balanced`` is then the
    familiar ``N / (C * count_c)``), which keeps the loss scale, and so the learning rate, comparable.
    """
    power = CLASS_WEIGHT_POWER[mode]
    counts = np.maximum(np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes), 1).astype(
        float
    )
    raw = counts**-power
    return torch.tensor(raw * counts.sum() / (counts * raw).sum(), dtype=torch.float32)


def make_loss(
    labels: np.ndarray, num_classes: int, options: TrainingConfig, device: torch.device
) -> nn.Module:
    """Cross-entropy, class-weighted as ``options.class_weights`` says, with optional label smoothing.

    Under DP-SGD the loss is per image (``reduction="none"``): a batch mean weighted by the batch's
    own labels would make one image's gradient depend on the others'.
    """
    weights = None
    if options.class_weights != "none":
        weights = class_weights(labels, num_classes, options.class_weights).to(device)
    reduction = "none" if options.dp.enabled else "mean"
    return nn.CrossEntropyLoss(weight=weights, label_smoothing=options.label_smoothing, reduction=reduction)


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW (multi-tensor ``foreach`` kernels, faster on CPU too); no weight decay on 1-D parameters."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, foreach=True)


def proximal_term(model: nn.Module, reference: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``sum ||w - w_ref||^2`` over trainable parameters (FedProx adds ``mu / 2`` times this)."""
    total = torch.zeros((), device=model_device(model))
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            total = total + (parameter - reference[name].detach()).pow(2).sum()
    return total


@dataclass
class LoopParts:
    """Everything one optimizer step needs."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: nn.Module
    device: torch.device
    augmenter: Augmenter | None = None
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    scaler: torch.amp.GradScaler | None = None
    amp: bool = False
    proximal_mu: float = 0.0
    reference: Mapping[str, torch.Tensor] | None = None
    private: PrivateTraining | None = None


@dataclass
class EpochProgress:
    """Position inside an epoch; everything needed to continue it exactly after an interruption."""

    epoch: int
    next_step: int = 0
    loss_sum: float = 0.0
    images: int = 0
    seconds: float = 0.0
    generator: torch.Generator = field(default_factory=torch.Generator)

    @classmethod
    def start(cls, epoch: int, seed: int) -> EpochProgress:
        return cls(epoch=epoch, generator=torch.Generator().manual_seed(derived_seed(seed, epoch, 1)))

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / self.images if self.images else float("nan")

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def state_dict(self) -> dict[str, Any]:
        """Every field by name, the generator as its state tensor."""
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**state, "generator": self.generator.get_state()}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> EpochProgress:
        generator = torch.Generator()
        generator.set_state(state["generator"])
        return cls(
            epoch=int(state["epoch"]),
            next_step=int(state["next_step"]),
            loss_sum=float(state["loss_sum"]),
            images=int(state["images"]),
            seconds=float(state["seconds"]),
            generator=generator,
        )


def _step(parts: LoopParts, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    with torch.autocast(device_type=parts.device.type, dtype=torch.float16, enabled=parts.amp):
        logits, _ = parts.model(inputs)
        loss = parts.loss_fn(logits.float(), targets)
    if parts.proximal_mu > 0 and parts.reference is not None:
        loss = loss + 0.5 * parts.proximal_mu * proximal_term(parts.model, parts.reference)
    parts.optimizer.zero_grad(set_to_none=True)
    if parts.scaler is not None and parts.scaler.is_enabled():
        parts.scaler.scale(loss).backward()
        parts.scaler.step(parts.optimizer)
        parts.scaler.update()
    else:
        loss.backward()
        parts.optimizer.step()
    if parts.scheduler is not None:
        parts.scheduler.step()
    return loss.detach()


def _private_step(parts: LoopParts, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """One DP-SGD step: the summed per-image loss, clipped and noised by the private optimizer."""
    private = parts.private
    logits, _ = private.model(inputs)
    losses = parts.loss_fn(logits.float(), targets)
    private.optimizer.zero_grad(set_to_none=True)
    losses.sum().backward()
    private.optimizer.step()
    private.guard.record_step()
    if parts.scheduler is not None:
        parts.scheduler.step()
    return losses.detach().mean() if len(losses) else torch.zeros(())


def _batches(parts: LoopParts, num_images: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    if parts.private is None:
        return epoch_batches(num_images, batch_size, seed, epoch)
    plan = parts.private.guard.plan
    generator = torch.Generator().manual_seed(derived_seed(seed, epoch, 0))
    return poisson_batches(num_images, plan.sample_rate, plan.steps_per_epoch, generator)


def run_epoch(
    parts: LoopParts,
    data: PreparedImages,
    batch_size: int,
    seed: int,
    progress: EpochProgress,
    callbacks: Sequence[Callback] = (),
    stop: StopSignal | None = None,
) -> EpochProgress:
    """Train from ``progress.next_step`` to the end of ``progress.epoch``; ``progress`` is updated in place.

    After every step the position is recorded before any hook runs, so an interruption raised by
    a hook (or a Ctrl-C noticed through ``stop``) leaves ``progress`` pointing at the next step.
    """
    batches = _batches(parts, len(data), batch_size, seed, progress.epoch)
    parts.model.train()
    for index in range(progress.next_step, len(batches)):
        if stop is not None and stop.requested:
            raise KeyboardInterrupt
        if parts.private is not None and not parts.private.guard.can_step():
            break
        started = time.perf_counter()
        indices = batches[index]
        inputs = data.batch(indices).to(parts.device, non_blocking=True)
        targets = data.label_batch(indices).to(parts.device, non_blocking=True)
        if parts.augmenter is not None and len(indices):
            inputs = parts.augmenter(inputs, progress.generator)
        step = _step if parts.private is None else _private_step
        loss = step(parts, inputs, targets).item()
        if not math.isfinite(loss):
            raise ModelError(
                f"the training loss became {loss} in epoch {progress.epoch + 1}",
                hint="lower the learning rate (--lr) or check the data",
            )
        progress.seconds += time.perf_counter() - started
        progress.next_step = index + 1
        progress.loss_sum += loss * len(indices)
        progress.images += len(indices)
        info = StepInfo(
            epoch=progress.epoch,
            step=index + 1,
            steps=len(batches),
            loss=progress.mean_loss,
            images_per_s=progress.images_per_s,
            lr=float(parts.optimizer.param_groups[0]["lr"]),
        )
        for callback in callbacks:
            callback.on_step_end(info)
    return progress


def train_local(
    model: Specialist,
    data: LabelledImages | PreparedImages,
    preprocessing: Preprocessing,
    options: TrainingConfig,
    epochs: int,
    *,
    seed: int = 0,
    proximal_mu: float = 0.0,
    reference: Mapping[str, torch.Tensor] | None = None,
    callbacks: Sequence[Callback] = (),
    modality: str = "",
    guard: BudgetGuard | None = None,
) -> dict[str, float]:
    """Train ``model`` in place for ``epochs`` local epochs on one split (federated rounds).

    Same loop, loss, augmentation and optimizer as ``site-agent train``, at a constant learning rate
    ``options.lr`` (the server owns the schedule across rounds). With ``proximal_mu > 0`` the FedProx
    term ``mu / 2 * ||w - reference||^2`` is added; ``reference`` defaults to the weights the model
    has on entry (the global model of the round). Vary ``seed`` per round for fresh data orders.
    ``modality`` (``task.modality``) decides which flips augmentation may use.
    ``guard``: train with DP-SGD under this budget guard (``options.dp`` must be enabled and the
    model DP-compatible); its accountant goes on counting from its history, so a federated run's
    rounds compose, and training stops where one more step would exceed the budget.
    Returns ``train_loss`` (mean over the last epoch), ``num_examples``, ``images_per_s``, ``seconds``.
    """
    if epochs < 1:
        raise ConfigError(f"local epochs must be >= 1, got {epochs}")
    if (guard is not None) != options.dp.enabled:
        raise ConfigError("DP-SGD needs both training.dp enabled and a budget guard")
    if guard is not None and proximal_mu > 0:
        raise ConfigError(
            "FedProx's proximal term cannot be combined with DP-SGD at the site",
            hint="run the federation with --strategy fedavg, or turn training.dp off at this site",
        )
    prepared = (
        data if isinstance(data, PreparedImages) else PreparedImages(data, preprocessing, options.cache_mb)
    )
    device = model_device(model)
    if proximal_mu > 0:
        if reference is None:
            reference = {name: p.detach().clone() for name, p in model.named_parameters()}
        reference = {name: tensor.to(device) for name, tensor in reference.items()}
    amp = options.amp and device.type == "cuda" and guard is None
    optimizer = make_optimizer(model, options.lr, options.weight_decay)
    private = None if guard is None else make_private(model, optimizer, guard.options, guard.plan, guard)
    parts = LoopParts(
        model=model,
        optimizer=optimizer,
        loss_fn=make_loss(prepared.labels, model.num_classes, options, device),
        device=device,
        augmenter=Augmenter(options.augmentation, preprocessing, modality=modality),
        scaler=torch.amp.GradScaler(device.type, enabled=amp) if amp else None,
        amp=amp,
        proximal_mu=proximal_mu,
        reference=reference,
        private=private,
    )
    seconds = 0.0
    try:
        for epoch in range(epochs):
            progress = run_epoch(
                parts, prepared, options.batch_size, seed, EpochProgress.start(epoch, seed), callbacks
            )
            seconds += progress.seconds
    finally:
        if private is not None:
            private.release()
    return {
        "train_loss": progress.mean_loss,
        "num_examples": float(len(prepared)),
        "images_per_s": len(prepared) * epochs / seconds if seconds > 0 else 0.0,
        "seconds": seconds,
    }

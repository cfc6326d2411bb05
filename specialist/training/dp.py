"""DP-SGD for a specialist: the one module that touches Opacus (pinned in pyproject.toml).

Sample-level differential privacy for the training images: Poisson-sampled batches, per-image
gradients clipped to ``max_grad_norm``, Gaussian noise calibrated by Opacus so that the planned
steps spend at most the budget ``epsilon`` at ``delta``, and Opacus' accountant (RDP or PRV)
for the ε actually spent. Before every step :meth:`PrivateTraining.can_step` asks the
accountant whether one more step would exceed the budget; the loop stops when it would.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.grad_sample import GradSampleModule
from opacus.optimizers import DPOptimizer
from opacus.validators import ModuleValidator
from torch import nn

from gsco_common.errors import ConfigError
from registry.bundle.card import NOTION_SITE
from specialist.models.specialist import Specialist
from specialist.training.config import DPConfig


class _CloneOutput(nn.Module):
    """A norm layer whose output is a copy.

    In-place residual additions after a norm (``x += shortcut`` in timm's ResNets) must not modify
    the view that Opacus' backward hook returns.
    """

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x).clone()


def _refuse(backbone: str, reason: str) -> ConfigError:
    return ConfigError(
        f"backbone {backbone!r} cannot train with DP-SGD: {reason}",
        hint="choose resnet18, vgg16, alexnet or a ViT backbone, or train without --dp",
    )


def make_dp_compatible(model: Specialist) -> Specialist:
    """A copy of ``model`` that DP-SGD can train: BatchNorm replaced by GroupNorm, no in-place ops.

    Batch norm mixes the images of a batch, so per-image gradients would not exist. Opacus'
    ``ModuleValidator.fix`` swaps plain BatchNorm layers for GroupNorm; subclasses it does not
    know (timm's ``BatchNormAct2d`` in densenet121 and efficientnet_b4) make the backbone refused.

    Raises:
        ConfigError: naming the backbone and the layer type it cannot train privately.
    """
    fixed = ModuleValidator.fix(copy.deepcopy(model))
    left = sorted(
        {type(m).__name__ for m in fixed.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    )
    if left:
        raise _refuse(model.backbone, f"its {', '.join(left)} layers mix the images of a batch")
    problems = ModuleValidator.validate(fixed, strict=False)
    if problems:
        raise _refuse(model.backbone, str(problems[0]).splitlines()[0])
    for module in list(fixed.modules()):
        if hasattr(module, "inplace"):
            module.inplace = False
        for name, child in list(module.named_children()):
            if isinstance(child, nn.GroupNorm) and not isinstance(module, _CloneOutput):
                setattr(module, name, _CloneOutput(child))
    return fixed


@dataclass(frozen=True)
class DPPlan:
    """The DP-SGD parameters of one run, fixed before the first step."""

    sample_rate: float
    steps_per_epoch: int
    planned_steps: int
    noise_multiplier: float
    expected_batch_size: int

    def to_dict(self) -> dict[str, float | int]:
        return {field: getattr(self, field) for field in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DPPlan:
        return cls(
            sample_rate=float(values["sample_rate"]),
            steps_per_epoch=int(values["steps_per_epoch"]),
            planned_steps=int(values["planned_steps"]),
            noise_multiplier=float(values["noise_multiplier"]),
            expected_batch_size=int(values["expected_batch_size"]),
        )


def plan_dp(options: DPConfig, num_images: int, batch_size: int, epochs: int) -> DPPlan:
    """Poisson rate ``1 / ceil(N / B)`` (expected batch ``B``, as Opacus' DP data loader) and the noise."""
    if num_images < 2:
        raise ConfigError("DP-SGD needs at least 2 training images")
    steps_per_epoch = math.ceil(num_images / min(batch_size, num_images))
    sample_rate = 1.0 / steps_per_epoch
    steps = steps_per_epoch * epochs
    noise = get_noise_multiplier(
        target_epsilon=options.epsilon,
        target_delta=options.delta,
        sample_rate=sample_rate,
        steps=steps,
        accountant=options.accountant,
    )
    return DPPlan(sample_rate, steps_per_epoch, steps, float(noise), max(1, round(num_images * sample_rate)))


def poisson_batches(
    num_images: int, sample_rate: float, steps: int, generator: torch.Generator
) -> list[torch.Tensor]:
    """``steps`` batches, each image in each independently with probability ``sample_rate``."""
    draws = torch.rand(steps, num_images, generator=generator) < sample_rate
    return [row.nonzero().flatten() for row in draws]


class BudgetGuard:
    """Opacus' accountant plus the budget: may one more step be taken without exceeding it?"""

    def __init__(self, options: DPConfig, plan: DPPlan) -> None:
        self.options = options
        self.plan = plan
        self.accountant = create_accountant(options.accountant)
        self.exhausted = False

    @property
    def steps(self) -> int:
        return sum(count for _, _, count in self.accountant.history)

    def spent(self) -> float:
        """ε spent so far at the configured δ (0 before the first step)."""
        if not self.accountant.history:
            return 0.0
        return float(self.accountant.get_epsilon(delta=self.options.delta))

    def can_step(self) -> bool:
        """Whether the accountant's ε after one more step stays within the budget."""
        trial = create_accountant(self.options.accountant)
        trial.load_state_dict(copy.deepcopy(self.accountant.state_dict()))
        trial.step(noise_multiplier=self.plan.noise_multiplier, sample_rate=self.plan.sample_rate)
        allowed = trial.get_epsilon(delta=self.options.delta) <= self.options.epsilon
        self.exhausted = self.exhausted or not allowed
        return allowed

    def record_step(self) -> None:
        self.accountant.step(noise_multiplier=self.plan.noise_multiplier, sample_rate=self.plan.sample_rate)

    def report(self) -> dict[str, Any]:
        """What ``metrics.json`` and the card carry."""
        return {
            "notion": NOTION_SITE,
            "epsilon": self.spent(),
            "epsilon_budget": self.options.epsilon,
            "delta": self.options.delta,
            "accountant": self.options.accountant,
            "max_grad_norm": self.options.max_grad_norm,
            "noise_multiplier": self.plan.noise_multiplier,
            "sample_rate": self.plan.sample_rate,
            "steps": self.steps,
            "budget_exhausted": self.exhausted,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.accountant.history), "exhausted": self.exhausted}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.accountant.history = [tuple(entry) for entry in state["history"]]
        self.exhausted = bool(state["exhausted"])


@dataclass
class PrivateTraining:
    """A model and optimizer made private: per-image gradients, clipping and noise, one guard."""

    model: GradSampleModule
    optimizer: DPOptimizer
    guard: BudgetGuard

    def release(self) -> None:
        """Remove Opacus' per-image gradient hooks, leaving the plain (trained) model."""
        self.model.to_standard_module()


def make_private(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    options: DPConfig,
    plan: DPPlan,
    guard: BudgetGuard | None = None,
) -> PrivateTraining:
    """Wrap a DP-compatible ``model`` (see :func:`make_dp_compatible`) and its optimizer.

    The loss must be the *sum* of per-image losses: the optimizer divides the clipped, noised
    sum by the expected batch size, as Opacus does for Poisson sampling. ``guard``: an existing
    budget guard whose accountant goes on counting (a federated run's rounds); a fresh one
    without. :meth:`PrivateTraining.release` takes Opacus' hooks off the model again.
    """
    try:
        wrapped = GradSampleModule(model, batch_first=True, loss_reduction="sum")
    except NotImplementedError as exc:
        name = getattr(model, "backbone", type(model).__name__)
        raise _refuse(name, str(exc).splitlines()[0][:200]) from None
    private_optimizer = DPOptimizer(
        optimizer,
        noise_multiplier=plan.noise_multiplier,
        max_grad_norm=options.max_grad_norm,
        expected_batch_size=plan.expected_batch_size,
        loss_reduction="mean",
    )
    return PrivateTraining(wrapped, private_optimizer, guard or BudgetGuard(options, plan))

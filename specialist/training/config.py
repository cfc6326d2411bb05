"""How a specialist is trained: the loop's settings (a site's ``training:`` section of ``site.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from specialist.task import StrictModel

MonitorName = Literal["balanced_accuracy", "macro_f1", "accuracy", "auc", "loss"]
ClassWeighting = Literal["balanced", "sqrt", "none"]
ResizeMode = Literal["pad", "stretch"]
TtaMode = Literal["none", "hflip"]
SHA256_PATTERN = r"^(sha256:)?[0-9a-fA-F]{64}$"
Flip = bool | Literal["auto"]
MAX_SEED = 2**32 - 1
"""Seeds are 32-bit: NumPy's legacy seeding takes no more, and torch overflows past 64 bits."""


class AugmentationConfig(StrictModel):
    """Light, anatomy-preserving augmentation applied to training batches only.

    Each training image is augmented with ``probability`` (the rest pass unchanged, so the
    network also sees images as sharp as at inference). Flips follow ``task.modality`` under
    ``auto`` (:mod:`specialist.training.modality`): never for chest X-rays (a mirrored one swaps
    laterality), both for dermoscopy and microscopy, none for ultrasound (left-right on request,
    upside-down refused) and an unknown modality; an explicit flip the modality forbids is refused.
    """

    enabled: bool = True
    probability: float = Field(default=0.5, ge=0.0, le=1.0)
    rotation_deg: float = Field(default=10.0, ge=0.0, le=45.0)
    translate: float = Field(default=0.05, ge=0.0, le=0.3)
    scale: tuple[float, float] = (0.9, 1.1)
    brightness: float = Field(default=0.1, ge=0.0, le=0.5)
    contrast: float = Field(default=0.1, ge=0.0, le=0.5)
    hflip: Flip = "auto"
    vflip: Flip = "auto"

    @field_validator("scale")
    @classmethod
    def _scale_range(cls, scale: tuple[float, float]) -> tuple[float, float]:
        if not 0.5 <= scale[0] <= scale[1] <= 2.0:
            raise ValueError("scale must be [low, high] with 0.5 <= low <= high <= 2.0")
        return scale


class EarlyStoppingConfig(StrictModel):
    """Stop when the monitored validation metric has not improved for ``patience`` epochs."""

    monitor: MonitorName = "balanced_accuracy"
    patience: int = Field(default=5, ge=1)
    min_delta: float = Field(default=0.0, ge=0.0)


class DPConfig(StrictModel):
    """Differentially private training (DP-SGD with Opacus): per-image clipping, Gaussian noise.

    The noise is calibrated so that the planned epochs spend at most ``epsilon`` at ``delta``
    (sample-level DP for the site's training images); training stops before an extra step would
    exceed the budget. ``accountant`` is Opacus' RDP or PRV accountant.
    """

    enabled: bool = False
    epsilon: float = Field(default=8.0, gt=0.0, le=100.0)
    delta: float = Field(default=1e-5, gt=0.0, lt=0.1)
    max_grad_norm: float = Field(default=1.0, gt=0.0, le=100.0)
    accountant: Literal["rdp", "prv"] = "rdp"


class TrainingConfig(StrictModel):
    """Training defaults of the site; every field can be overridden by a ``site-agent train`` flag."""

    backbones: list[str] = Field(default_factory=lambda: ["resnet18"], min_length=1)
    image_size: int = Field(default=224, ge=16, le=1024)
    resize: ResizeMode = "pad"
    tta: TtaMode = "none"
    epochs: int = Field(default=20, ge=1, le=1000)
    batch_size: int = Field(default=32, ge=2, le=4096)
    lr: float = Field(default=1e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(default=0.05, ge=0.0, le=1.0)
    warmup_fraction: float = Field(default=0.05, ge=0.0, lt=1.0)
    min_lr_ratio: float = Field(default=0.01, ge=0.0, le=1.0)
    class_weights: ClassWeighting = "balanced"
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    augmentation: AugmentationConfig = Field(default_factory=AugmentationConfig)
    dp: DPConfig = Field(default_factory=DPConfig)
    recipe: str = Field(default="auto", min_length=1, max_length=64)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    device: str = "auto"
    amp: bool = True
    num_threads: int | None = Field(default=None, ge=1)
    cache_mb: int = Field(default=2048, ge=0)
    weights_dir: Path | None = None
    weights_sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    weights_origin: str = Field(default="", max_length=500)

    @field_validator("device")
    @classmethod
    def _device_name(cls, device: str) -> str:
        if device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit()):
            return device
        raise ValueError("device must be 'auto', 'cpu', 'cuda' or 'cuda:N'")

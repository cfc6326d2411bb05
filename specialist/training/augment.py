"""Light, anatomy-preserving augmentation of whole training batches on the training device.

Works on normalised model inputs: it undoes the card's mean/std, applies a random affine
(rotation, translation, scale, the flips the modality allows) and brightness/contrast jitter in
[0, 1] intensity space, clamps and normalises again. All randomness comes from the caller's
``torch.Generator`` so that a run is reproducible and resumable mid-epoch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from registry.bundle.preprocess import Preprocessing
from specialist.training.config import AugmentationConfig
from specialist.training.modality import resolve_flips


def _uniform(generator: torch.Generator, count: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(count, generator=generator)


class Augmenter:
    """Callable ``(batch [B, 3, S, S], generator) -> augmented batch`` for one preprocessing.

    ``config`` holds concrete flips once built: ``auto`` is resolved from ``modality`` (and an
    explicit flip the modality forbids raises :class:`~gsco_common.errors.ConfigError`).
    """

    def __init__(self, config: AugmentationConfig, preprocessing: Preprocessing, *, modality: str) -> None:
        self.config = resolve_flips(config, modality)
        self.mean = torch.tensor(preprocessing.mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(preprocessing.std, dtype=torch.float32).view(1, 3, 1, 1)

    @property
    def active(self) -> bool:
        cfg = self.config
        geometric = (
            cfg.rotation_deg > 0 or cfg.translate > 0 or cfg.scale != (1.0, 1.0) or cfg.hflip or cfg.vflip
        )
        photometric = cfg.brightness > 0 or cfg.contrast > 0
        return cfg.enabled and cfg.probability > 0 and (geometric or photometric)

    def _theta(self, count: int, generator: torch.Generator) -> torch.Tensor:
        cfg = self.config
        angle = _uniform(generator, count, -cfg.rotation_deg, cfg.rotation_deg) * (math.pi / 180.0)
        scale = _uniform(generator, count, cfg.scale[0], cfg.scale[1])
        shift = _uniform(generator, 2 * count, -2 * cfg.translate, 2 * cfg.translate).view(count, 2)
        flip_x = torch.ones(count)
        flip_y = torch.ones(count)
        if cfg.hflip:
            flip_x = torch.where(torch.rand(count, generator=generator) < 0.5, -1.0, 1.0)
        if cfg.vflip:
            flip_y = torch.where(torch.rand(count, generator=generator) < 0.5, -1.0, 1.0)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        row0 = torch.stack([cos * flip_x, -sin * flip_y, shift[:, 0]], dim=1)
        row1 = torch.stack([sin * flip_x, cos * flip_y, shift[:, 1]], dim=1)
        return torch.stack([row0, row1], dim=1)

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if not self.active:
            return batch
        cfg = self.config
        count = batch.shape[0]
        device = batch.device
        mean, std = self.mean.to(device), self.std.to(device)
        chosen = (torch.rand(count, generator=generator) < cfg.probability).to(device).view(count, 1, 1, 1)
        theta = self._theta(count, generator).to(device)
        brightness = (
            _uniform(generator, count, -cfg.brightness, cfg.brightness).to(device).view(count, 1, 1, 1)
        )
        contrast = (
            _uniform(generator, count, 1 - cfg.contrast, 1 + cfg.contrast).to(device).view(count, 1, 1, 1)
        )
        unit = batch * std + mean
        grid = F.affine_grid(theta, list(unit.shape), align_corners=False)
        unit = F.grid_sample(unit, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        centre = unit.mean(dim=(1, 2, 3), keepdim=True)
        unit = ((unit - centre) * contrast + centre + brightness).clamp_(0.0, 1.0)
        return torch.where(chosen, (unit - mean) / std, batch)

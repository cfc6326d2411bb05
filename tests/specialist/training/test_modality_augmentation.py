"""Modality-aware augmentation: flips only where the anatomy allows them (asserted on pixels)."""

from __future__ import annotations

import pytest
import torch

from gsco_common.errors import ConfigError
from registry.bundle.flips import flip_rule
from registry.bundle.preprocess import Preprocessing
from specialist.training.augment import Augmenter
from specialist.training.config import AugmentationConfig
from specialist.training.modality import resolve_flips

CHEST = "paediatric chest X-ray"
ULTRASOUND = "breast ultrasound"
DERMOSCOPY = "dermoscopy of skin lesions"
SIZE = 16
# flips only: no rotation, shift, scale or intensity change, every image augmented
FLIPS_ONLY = AugmentationConfig(
    probability=1.0, rotation_deg=0, translate=0, scale=(1.0, 1.0), brightness=0, contrast=0
)


def _marked_batch(count: int) -> tuple[torch.Tensor, Preprocessing]:
    """Normalised images with one bright block in the top-left quadrant only."""
    spec = Preprocessing(input_size=SIZE)
    unit = torch.zeros(count, 3, SIZE, SIZE)
    unit[:, :, 1:6, 1:6] = 1.0
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    return (unit - mean) / std, spec


def _quadrants(batch: torch.Tensor) -> list[tuple[bool, bool]]:
    """Per image: (block on the left?, block at the top?) from the red channel's pixels."""
    half = SIZE // 2
    red = batch[:, 0]
    left = red[:, :, :half].mean(dim=(1, 2)) > red[:, :, half:].mean(dim=(1, 2))
    top = red[:, :half, :].mean(dim=(1, 2)) > red[:, half:, :].mean(dim=(1, 2))
    return list(zip(left.tolist(), top.tolist(), strict=True))


def _augment(config: AugmentationConfig, modality: str, count: int = 64) -> list[tuple[bool, bool]]:
    batch, spec = _marked_batch(count)
    return _quadrants(Augmenter(config, spec, modality=modality)(batch, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("config", [FLIPS_ONLY, AugmentationConfig(probability=1.0)])
def test_a_chest_xray_is_never_flipped(config: AugmentationConfig) -> None:
    assert set(_augment(config, CHEST)) == {(True, True)}


def test_ultrasound_flips_left_right_only_on_request_and_never_upside_down() -> None:
    assert set(_augment(FLIPS_ONLY, ULTRASOUND)) == {(True, True)}
    asked = FLIPS_ONLY.model_copy(update={"hflip": True})
    assert set(_augment(asked, ULTRASOUND)) == {(True, True), (False, True)}


def test_dermoscopy_flips_both_ways() -> None:
    assert set(_augment(FLIPS_ONLY, DERMOSCOPY)) == {
        (True, True),
        (False, True),
        (True, False),
        (False, False),
    }


def test_an_unknown_modality_flips_only_on_request() -> None:
    assert set(_augment(FLIPS_ONLY, "synthetic test images")) == {(True, True)}
    asked = FLIPS_ONLY.model_copy(update={"vflip": True})
    assert set(_augment(asked, "synthetic test images")) == {(True, True), (True, False)}


def test_an_explicit_no_overrides_an_allowed_flip() -> None:
    assert set(_augment(FLIPS_ONLY.model_copy(update={"hflip": False}), DERMOSCOPY)) == {
        (True, True),
        (True, False),
    }


@pytest.mark.parametrize(
    ("modality", "axis"),
    [(CHEST, "hflip"), (CHEST, "vflip"), ("Chest radiograph (PA)", "hflip"), (ULTRASOUND, "vflip")],
)
def test_a_flip_the_anatomy_forbids_is_refused_naming_the_key(modality: str, axis: str) -> None:
    config = AugmentationConfig.model_validate({axis: True})
    with pytest.raises(ConfigError, match=f"training.augmentation.{axis} is on"):
        resolve_flips(config, modality)
    # with augmentation off nothing is flipped, so nothing is refused
    assert not resolve_flips(config.model_copy(update={"enabled": False}), modality).enabled


def test_rules_are_picked_from_the_modality_words() -> None:
    assert flip_rule("Paediatric CHEST X-ray").family == "chest radiograph"
    assert flip_rule("breast ultrasound (B-mode)").family == "ultrasound"
    assert flip_rule("H&E histology patches").family == "dermoscopy or microscopy"
    assert flip_rule("fundus photograph").family == "unknown"
    resolved = resolve_flips(AugmentationConfig(), DERMOSCOPY)
    assert (resolved.hflip, resolved.vflip) == (True, True)

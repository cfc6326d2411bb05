"""Build a specialist: spec lookup, size handling, local pretrained weights, preprocessing."""

from __future__ import annotations

import logging
from pathlib import Path

from gsco_common.errors import ModelError
from registry.bundle.preprocess import Preprocessing
from specialist.models import backbones as _backbones  # noqa: F401  (registers the ten backbones)
from specialist.models.registry import get_spec
from specialist.models.specialist import Specialist
from specialist.models.weights import (
    WEIGHTS_ENV,
    find_weights_file,
    load_backbone_weights,
    resolve_weights_dir,
)

log = logging.getLogger(__name__)


def create_specialist(
    backbone: str,
    num_classes: int,
    image_size: int,
    weights_dir: Path | None = None,
    *,
    pretrained: bool = True,
    resize: str = "pad",
    weights_sha256: str | None = None,
) -> Specialist:
    """Build a specialist classifier for ``num_classes`` classes at ``image_size`` pixels.

    Sizes a backbone cannot take are rounded up to the nearest valid one (logged);
    ``specialist.preprocessing.input_size`` is the size actually used. Pretrained weights come
    only from the local weights folder (``weights_dir``, else ``GSCO_WEIGHTS_DIR``); without a
    file for this backbone the weights are random and a warning is logged. ``pretrained=False``
    skips the folder, e.g. when a checkpoint is loaded right after. ``resize`` is the card's
    input geometry (``pad``: aspect ratio kept; ``stretch``: what runs before the field did).
    ``weights_sha256`` pins the weights file: a file with another digest, or none at all, is
    refused.
    """
    if num_classes < 2:
        raise ModelError(f"a specialist needs at least 2 classes, got {num_classes}")
    spec = get_spec(backbone)
    size = spec.valid_size(image_size)
    preprocessing = Preprocessing(
        input_size=size,
        mean=spec.mean,
        std=spec.std,
        interpolation=spec.interpolation,
        channels="gray_to_rgb",
        resize=resize,
    )
    model = Specialist(spec.builder(num_classes, size), backbone=spec.name, preprocessing=preprocessing)
    if not pretrained:
        return model
    folder = resolve_weights_dir(weights_dir)
    path = find_weights_file(folder, spec.name) if folder is not None else None
    if path is None and weights_sha256 is not None:
        raise ModelError(
            f"training.weights_sha256 pins pretrained weights for {spec.name}, but there is no "
            f"{spec.name}.safetensors (.pth, .pt) in the weights folder",
            hint=f"copy the published file into the weights folder (weights_dir / {WEIGHTS_ENV})",
        )
    if path is None:
        log.warning(
            "no pretrained weights for %s (put %s.safetensors in the weights folder, %s); "
            "starting from random initialisation",
            spec.name,
            spec.name,
            WEIGHTS_ENV,
        )
        return model
    load_backbone_weights(model, path, weights_sha256)
    return model

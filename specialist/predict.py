"""Batch inference of a specialist: class probabilities and pooled embeddings."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from registry.bundle.preprocess import Preprocessing
from registry.bundle.tta import merge
from specialist.data import LabelledImages
from specialist.inputs import PreparedImages


def model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def predict(
    model: nn.Module,
    images: LabelledImages | PreparedImages,
    preprocessing: Preprocessing,
    batch_size: int = 64,
    device: torch.device | None = None,
    tta: str = "none",
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` (forward -> ``(logits, embedding)``) over every image, in order.

    Inputs go through :func:`registry.bundle.preprocess.preprocess` with ``preprocessing`` (the card's),
    exactly as the hub will feed them. Returns ``probs`` ``float32 [N, C]`` (softmax) and
    ``embeddings`` ``float32 [N, D]``, averaged over the card's test-time views (``tta: hflip``:
    the image and its mirror, as :mod:`registry.bundle.tta` does at the hub). The model's
    train/eval mode is restored afterwards.
    """
    prepared = images if isinstance(images, PreparedImages) else PreparedImages(images, preprocessing, 0)
    device = device or model_device(model)
    was_training = model.training
    model.eval()
    probs: list[np.ndarray] = []
    embeddings: list[np.ndarray] = []
    try:
        with torch.inference_mode():
            for start in range(0, len(prepared), batch_size):
                indices = np.arange(start, min(start + batch_size, len(prepared)))
                batch = prepared.batch(indices).to(device, non_blocking=True)
                inputs = [batch, torch.flip(batch, dims=(3,))] if tta == "hflip" else [batch]
                outputs = [model(view) for view in inputs]
                probs.append(merge([torch.softmax(lg.float(), dim=1).cpu().numpy() for lg, _ in outputs]))
                embeddings.append(merge([emb.float().flatten(1).cpu().numpy() for _, emb in outputs]))
    finally:
        model.train(was_training)
    if not probs:
        return np.zeros((0, 0), dtype=np.float32), np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(probs).astype(np.float32), np.concatenate(embeddings).astype(np.float32)

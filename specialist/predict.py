"""Batch inference of a specialist: class probabilities and pooled embeddings."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from registry.bundle.preprocess import Preprocessing
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
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` (forward -> ``(logits, embedding)``) over every image, in order.

    Inputs go through :func:`registry.bundle.preprocess.preprocess` with ``preprocessing`` (the card's),
    exactly as the hub will feed them. Returns ``probs`` ``float32 [N, C]`` (softmax) and
    ``embeddings`` ``float32 [N, D]``. The model's train/eval mode is restored afterwards.
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
                logits, embedding = model(prepared.batch(indices).to(device, non_blocking=True))
                probs.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
                embeddings.append(embedding.float().flatten(1).cpu().numpy())
    finally:
        model.train(was_training)
    if not probs:
        return np.zeros((0, 0), dtype=np.float32), np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(probs).astype(np.float32), np.concatenate(embeddings).astype(np.float32)

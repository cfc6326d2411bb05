"""Model inputs for one split, made with the card's preprocessing (the hub's exact code path).

Preprocessing is deterministic, so a split small enough for ``cache_mb`` is preprocessed once and
kept as one tensor (training then only indexes it); larger splits are preprocessed per batch.
"""

from __future__ import annotations

import numpy as np
import torch

from registry.bundle.preprocess import Preprocessing, preprocess, preprocess_batch
from specialist.data import LabelledImages

BYTES_PER_MB = 1024 * 1024


class PreparedImages:
    """A split as float32 model inputs ``[3, S, S]``, addressed by batches of indices."""

    def __init__(self, images: LabelledImages, preprocessing: Preprocessing, cache_mb: int = 2048) -> None:
        self.images = images
        self.preprocessing = preprocessing
        self.labels = np.asarray(images.labels).astype(np.int64).reshape(-1)
        size = preprocessing.input_size
        needed = len(images) * 3 * size * size * 4
        self._cache: torch.Tensor | None = None
        if needed <= cache_mb * BYTES_PER_MB:
            cache = torch.empty((len(images), 3, size, size), dtype=torch.float32)
            for index in range(len(images)):
                cache[index] = torch.from_numpy(preprocess(images.image(index), preprocessing))
            self._cache = cache

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def cached(self) -> bool:
        return self._cache is not None

    def batch(self, indices: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Inputs for ``indices`` as a CPU tensor ``[B, 3, S, S]``."""
        if self._cache is not None:
            return self._cache[torch.as_tensor(indices, dtype=torch.long)]
        chosen = [self.images.image(int(index)) for index in indices]
        return torch.from_numpy(preprocess_batch(chosen, self.preprocessing))

    def label_batch(self, indices: np.ndarray | torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.labels[np.asarray(indices, dtype=np.int64)])

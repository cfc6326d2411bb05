"""A compressed ``.npz`` whose first member no longer inflates (``zlib.error`` in numpy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_damaged_npz(path: Path, **arrays: np.ndarray) -> Path:
    """``arrays`` saved compressed, then bytes 200-399 of the file inverted (inside the first member)."""
    np.savez_compressed(path, **arrays)
    data = bytearray(path.read_bytes())
    data[200:400] = bytes(b ^ 0xFF for b in data[200:400])
    path.write_bytes(bytes(data))
    return path


def damaged_split(path: Path) -> Path:
    """A damaged MedMNIST-style file: 50 noisy 28 px images and their labels in ``train``."""
    images = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    return write_damaged_npz(path, train_images=images, train_labels=np.zeros(50, dtype=np.int64))

"""Helpers shared by the federation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hub.federation.partition import write_site_slices

IMAGES_PER_SITE = 250


def site_slices(data: Path, folder: Path, sites: int) -> list[Path]:
    """``sites`` non-IID slices of a few hundred images each."""
    return write_site_slices(data, folder, sites, seed=1, limit=IMAGES_PER_SITE * sites)


def labels_of(path: Path) -> np.ndarray:
    with np.load(path) as archive:
        return archive["train_labels"].reshape(-1)

"""Images no model should learn from: non-finite, constant, or smaller than 2x2 pixels.

One such image (a DICOM with a broken window, an all-black export) used to turn a whole training
run into NaN. The loader counts them with the unreadable files (``SiteData.skipped``, by
position, never by path) instead of training on them.
"""

from __future__ import annotations

import numpy as np


def degenerate_reason(image: np.ndarray) -> str | None:
    """Why ``image`` is unusable for training, or ``None`` when it is fine."""
    if image.ndim < 2 or min(image.shape[:2]) < 2:
        return "smaller than 2x2 pixels"
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        return "non-finite pixel values"
    if image.min() == image.max():
        return "constant image"
    return None

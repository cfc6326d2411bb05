"""Images no specialist can see anything in: refused before any model runs.

An image with no pixels, non-finite pixels or one value everywhere carries no information, yet
every specialist would still answer it with some label; the runtime refuses it instead, so that
no confident label is ever given for it (the CLI exits with the input-error code, the service
answers 422).
"""

from __future__ import annotations

import numpy as np

from gsco_common.errors import ImageError


def refuse_degenerate(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` unchanged, or :class:`ImageError` naming what is wrong with them."""
    if pixels.size == 0:
        raise ImageError("the image has no pixels")
    if np.issubdtype(pixels.dtype, np.floating) and not np.isfinite(pixels).all():
        raise ImageError("the image has NaN or infinite pixels")
    if pixels.min() == pixels.max():
        raise ImageError("the image is constant (every pixel has the same value)", hint="check the export")
    return pixels

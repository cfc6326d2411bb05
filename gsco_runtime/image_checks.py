"""Images no specialist can see anything in: refused before any model runs.

An image with no pixels, non-finite pixels or one value everywhere carries no information, yet
every specialist would still answer it with some label; the runtime refuses it instead, so that
no confident label is ever given for it (the CLI exits with the input-error code, the service
answers 422).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gsco_common.errors import DataError, ImageError
from gsco_common.text import first_items


def refuse_degenerate(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` unchanged, or :class:`ImageError` naming what is wrong with them."""
    if pixels.size == 0:
        raise ImageError("the image has no pixels")
    if np.issubdtype(pixels.dtype, np.floating) and not np.isfinite(pixels).all():
        raise ImageError("the image has NaN or infinite pixels")
    if pixels.min() == pixels.max():
        raise ImageError("the image is constant (every pixel has the same value)", hint="check the export")
    return pixels


def refuse_degenerate_images(images: Sequence[np.ndarray], what: str) -> None:
    """:class:`DataError` naming the positions (from 1) of the degenerate images in ``images``.

    For a data set scored as a whole (``evaluate``): a constant or NaN image would get a label
    like any other and count in every method's score.
    """
    bad: list[str] = []
    for position, image in enumerate(images, start=1):
        try:
            refuse_degenerate(np.asarray(image))
        except ImageError as exc:
            bad.append(f"image {position} {exc.message.removeprefix('the image ')}")
    if bad:
        shown = first_items(bad, 5, "; ")
        raise DataError(
            f"{what} holds {len(bad)} image(s) no specialist can see anything in: {shown}",
            hint="remove them from the data set; positions count from 1 in the split's order",
        )

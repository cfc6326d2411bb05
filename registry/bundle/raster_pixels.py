"""A decoded Pillow image as the raw array the model's preprocessing takes: one mapping for all readers.

The site's reader (``site_agent.data.decode``), the hub's case library
(``gsco_runtime.cases.readers``) and the hub's upload intake (``hub.service.intake``) all turn
PNG / JPEG / TIFF / BMP images into arrays here, so that a file gives the same model input at
the site and at the hub (as :mod:`registry.bundle.dicom_pixels` does for DICOM):

- grayscale (``L``, ``1``, ``LA``) -> ``[H, W]`` uint8;
- 16-bit and 32-bit integer grayscale (``I;16*``, ``I``) -> ``[H, W]`` uint16 (``I`` clipped);
- float grayscale (``F``) -> ``[H, W]`` float32 scaled to [0, 1];
- anything else (``RGB``, ``RGBA``, ``P`` palettes, ``CMYK``, ...) -> ``[H, W, 3]`` uint8. A
  palette may hold colours, so it becomes RGB; :func:`registry.bundle.preprocess.preprocess`
  then makes a grayscale model's input the same way for every RGB image.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image

# The suffixes of the image files every reader decodes through Pillow (the site's ImageFolder, the
# hub's case library): one list, so that a folder gives the same images at the site and the hub.
RASTER_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"})

# What Pillow raises on a missing, damaged or unsupported file: not an image
# (``UnidentifiedImageError`` is an OSError), cut short, a truncated IHDR chunk (ValueError), a
# broken chunk (SyntaxError "broken PNG file"), a short header field or compressed stream. One
# tuple for the site's reader, the hub's case readers and its upload intake.
RASTER_DECODE_ERRORS: tuple[type[Exception], ...] = (
    OSError, EOFError, ValueError, SyntaxError, struct.error, zlib.error,
)  # fmt: skip


def pil_to_array(img: Image.Image) -> np.ndarray:
    if img.mode in ("L", "1", "LA"):
        return np.asarray(img.convert("L"), dtype=np.uint8)
    if img.mode.startswith("I;16"):
        return np.asarray(img, dtype=np.uint16)
    if img.mode == "I":
        return np.clip(np.asarray(img), 0, 65535).astype(np.uint16)
    if img.mode == "F":
        values = np.asarray(img, dtype=np.float32)
        span = float(values.max() - values.min())
        return (values - values.min()) / span if span > 0 else np.zeros_like(values)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)

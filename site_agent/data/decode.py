"""Decode one image file into a raw array, telling unreadable files apart from bugs.

PNG / JPEG / TIFF / BMP go through Pillow; ``.dcm`` / ``.dicom`` files through
:mod:`site_agent.data.dicom`. Decoding is eager (the loader keeps decoded arrays in memory), so
a corrupt file is found at load time, not in the middle of an epoch.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.errors import InvalidDicomError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"})
DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})


class UnreadableImage(ValueError):
    """The file exists but holds no image we can use (unsupported layout or photometry)."""


# What Pillow and pydicom raise on missing, truncated, corrupt or unsupported files. Anything
# else is a bug and propagates.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    SyntaxError,
    RuntimeError,
    NotImplementedError,
    struct.error,
    zlib.error,
    InvalidDicomError,
    Image.DecompressionBombError,
)


@dataclass
class Decoded:
    """A decoded image plus what the file told us about the patient (DICOM only)."""

    image: np.ndarray
    identifiers: set[str] = field(default_factory=set)
    patient_id: str | None = None


def is_image_file(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in IMAGE_SUFFIXES or suffix in DICOM_SUFFIXES


def decode_file(path: Path) -> Decoded:
    """Decode ``path``; raises one of :data:`DECODE_ERRORS` when it cannot be read."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        from site_agent.data.dicom import decode_dicom

        return decode_dicom(path)
    return Decoded(decode_pil(path))


def try_decode(path: Path) -> Decoded | None:
    """:func:`decode_file`, or ``None`` when the file is missing or unreadable."""
    try:
        return decode_file(path)
    except DECODE_ERRORS:
        return None


def decode_pil(path: Path) -> np.ndarray:
    """Grayscale -> ``[H, W]`` uint8 (uint16 for 16-bit files); anything else -> ``[H, W, 3]``."""
    with Image.open(path) as img:
        img.load()
        return pil_to_array(img)


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

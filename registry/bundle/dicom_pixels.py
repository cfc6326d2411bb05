"""DICOM pixels as float32 in [0, 1], the way a viewer shows them: one implementation for all.

The site's reader (``site_agent.data.decode``) and the hub's upload intake
(``hub.service.intake``) both turn a DICOM image into the raw image that
:func:`registry.bundle.preprocess.preprocess` takes through :func:`dicom_to_unit`, so a file
gives the same model input at the site and at the hub. Grayscale:

1. modality LUT (``RescaleSlope`` / ``RescaleIntercept`` or a Modality LUT Sequence);
2. VOI window (``WindowCenter`` / ``WindowWidth``, the first value when multi-valued, with the
   ``VOILUTFunction`` LINEAR, LINEAR_EXACT or SIGMOID); without a window the stored bit range
   (``BitsStored``, after rescale) maps onto [0, 1];
3. MONOCHROME1 (white = low values) is inverted so that bright always means dense.

RGB images are scaled by their bit depth. Non-finite values stay non-finite, for the caller's
degenerate-image check to refuse. A header value that is empty, not a number or malformed is an
:class:`UnreadableImage` naming the attribute, never its value (a value may identify a patient).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut

DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})

# What pydicom raises on a damaged file or header: not DICOM, cut short, an unknown value
# representation (NotImplementedError), a value that does not parse or has the wrong length
# (pydicom parses on first access), a missing or short sequence item, pixel data or a LUT unlike
# its description, numbers too large to compute with. One tuple for the site's reader and the
# hub's intake; anything else is a bug and propagates.
DICOM_DECODE_ERRORS: tuple[type[Exception], ...] = (
    InvalidDicomError, BytesLengthException, OSError, EOFError, ValueError, TypeError, KeyError,
    IndexError, AttributeError, NotImplementedError, RuntimeError, OverflowError, struct.error,
    zlib.error,
)  # fmt: skip


class UnreadableImage(ValueError):
    """The file exists but holds no image we can use (unsupported layout or photometry, bad header)."""


def header_count(ds: Dataset, keyword: str, default: int) -> int:
    """A whole-number attribute (``Rows``, ``NumberOfFrames``, ...); ``default`` when absent or empty."""
    try:
        value = ds.get(keyword)
        return default if value is None or value == "" else int(value)
    except DICOM_DECODE_ERRORS:
        raise UnreadableImage(f"{keyword} is not a whole number") from None


def frame_count(ds: Dataset) -> int:
    """``NumberOfFrames`` (1 when absent or empty); below 1 is a malformed header.

    pydicom decodes one frame of a file that says 0 (or -1): counted as such, the file would pass
    every ``Rows x Columns x frames`` pixel limit whatever its size.
    """
    frames = header_count(ds, "NumberOfFrames", 1)
    if frames < 1:
        raise UnreadableImage("NumberOfFrames is less than 1")
    return frames


def header_number(ds: Dataset, keyword: str) -> float | None:
    """A numeric attribute (its first value when multi-valued); ``None`` when absent or empty."""
    try:
        value = ds.get(keyword)
        if isinstance(value, MultiValue | list | tuple):
            value = value[0] if value else None
        return None if value is None or value == "" else float(value)
    except DICOM_DECODE_ERRORS:
        raise UnreadableImage(f"{keyword} is not a number") from None


def dicom_to_unit(pixels: np.ndarray, ds: Dataset) -> np.ndarray:
    """One frame's ``pixel_array`` (``[H, W]`` or ``[H, W, 3]``) as float32 in [0, 1]."""
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if photometric in ("MONOCHROME1", "MONOCHROME2") and pixels.ndim == 2:
        image = window_to_unit(_modality_values(pixels, ds), ds)
        if photometric == "MONOCHROME1":
            image = 1.0 - image
    elif pixels.ndim == 3 and pixels.shape[-1] == 3:
        image = pixels.astype(np.float64) / (2.0 ** _bits_stored(ds) - 1)
    else:
        raise UnreadableImage("unsupported photometric interpretation (MONOCHROME1, MONOCHROME2 or RGB)")
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def window_to_unit(values: np.ndarray, ds: Dataset) -> np.ndarray:
    """Map modality values to [0, 1] with the file's VOI window, else its stored value range."""
    if "WindowCenter" in ds and "WindowWidth" in ds:
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
        return apply_window(values, _window(ds, "WindowCenter"), _window(ds, "WindowWidth"), function)
    low, high = _modality_range(ds)
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def apply_window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """VOI windowing to [0, 1] as defined in DICOM PS3.3 C.11.2.1.2 / C.11.2.1.3."""
    if function == "SIGMOID":
        if width <= 0:
            raise UnreadableImage("WindowWidth must be > 0 for SIGMOID")
        return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        if width <= 0:
            raise UnreadableImage("WindowWidth must be > 0 for LINEAR_EXACT")
        return np.clip((values - center) / width + 0.5, 0.0, 1.0)
    if function != "LINEAR":
        raise UnreadableImage("unsupported VOILUTFunction (LINEAR, LINEAR_EXACT or SIGMOID)")
    if width < 1:
        raise UnreadableImage("WindowWidth must be >= 1 for LINEAR")
    if width == 1:
        return (values > center - 0.5).astype(np.float64)
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _window(ds: Dataset, keyword: str) -> float:
    value = header_number(ds, keyword)
    if value is None:
        raise UnreadableImage(f"{keyword} is empty")
    return value


def _bits_stored(ds: Dataset) -> int:
    bits = header_count(ds, "BitsStored", 8)
    if not 1 <= bits <= 64:
        raise UnreadableImage("BitsStored is not between 1 and 64")
    return bits


def _modality_values(pixels: np.ndarray, ds: Dataset) -> np.ndarray:
    """The modality LUT or rescale applied by pydicom, which reads the header as it finds it."""
    if "ModalityLUTSequence" in ds and len(ds.ModalityLUTSequence) != 1:
        raise UnreadableImage("the Modality LUT Sequence does not hold exactly one item")
    header_number(ds, "RescaleSlope")  # a value that is not a number is refused by its name
    header_number(ds, "RescaleIntercept")
    try:
        return apply_modality_lut(pixels, ds).astype(np.float64)
    except DICOM_DECODE_ERRORS:
        raise UnreadableImage(
            "the Modality LUT Sequence or RescaleSlope / RescaleIntercept is malformed"
        ) from None


def _modality_range(ds: Dataset) -> tuple[float, float]:
    if "ModalityLUTSequence" in ds:  # one item whose LUT applied: its depth is a numpy width
        return 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    bits = _bits_stored(ds)
    if header_count(ds, "PixelRepresentation", 0) == 1:
        low, high = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    else:
        low, high = 0.0, 2.0**bits - 1
    slope = header_number(ds, "RescaleSlope") or 1.0
    intercept = header_number(ds, "RescaleIntercept") or 0.0
    ends = sorted((low * slope + intercept, high * slope + intercept))
    return ends[0], ends[1]

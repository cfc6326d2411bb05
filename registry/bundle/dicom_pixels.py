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
degenerate-image check to refuse.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut

DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})


class UnreadableImage(ValueError):
    """The file exists but holds no image we can use (unsupported layout or photometry)."""


def dicom_to_unit(pixels: np.ndarray, ds: Dataset) -> np.ndarray:
    """One frame's ``pixel_array`` (``[H, W]`` or ``[H, W, 3]``) as float32 in [0, 1]."""
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if photometric in ("MONOCHROME1", "MONOCHROME2") and pixels.ndim == 2:
        image = window_to_unit(apply_modality_lut(pixels, ds).astype(np.float64), ds)
        if photometric == "MONOCHROME1":
            image = 1.0 - image
    elif pixels.ndim == 3 and pixels.shape[-1] == 3:
        image = pixels.astype(np.float64) / float(2 ** int(ds.get("BitsStored", 8)) - 1)
    else:
        raise UnreadableImage(f"unsupported photometric interpretation {photometric!r}")
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def window_to_unit(values: np.ndarray, ds: Dataset) -> np.ndarray:
    """Map modality values to [0, 1] with the file's VOI window, else its stored value range."""
    if "WindowCenter" in ds and "WindowWidth" in ds:
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
        return apply_window(values, _first(ds.WindowCenter), _first(ds.WindowWidth), function)
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
        raise UnreadableImage(f"unsupported VOILUTFunction {function!r}")
    if width < 1:
        raise UnreadableImage("WindowWidth must be >= 1 for LINEAR")
    if width == 1:
        return (values > center - 0.5).astype(np.float64)
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _first(value: object) -> float:
    return float(value[0]) if isinstance(value, MultiValue | list | tuple) else float(value)  # type: ignore[index,arg-type]


def _modality_range(ds: Dataset) -> tuple[float, float]:
    if "ModalityLUTSequence" in ds:
        return 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    bits = int(ds.get("BitsStored", 8))
    if int(ds.get("PixelRepresentation", 0)) == 1:
        low, high = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    else:
        low, high = 0.0, 2.0**bits - 1
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    ends = sorted((low * slope + intercept, high * slope + intercept))
    return ends[0], ends[1]

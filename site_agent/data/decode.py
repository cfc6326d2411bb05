"""Decode one image file into a raw array, telling unreadable files apart from bugs.

PNG / JPEG / TIFF / BMP go through Pillow; ``.dcm`` / ``.dicom`` files through pydicom. Decoding
is eager (the loader keeps decoded arrays in memory), so a corrupt file is found at load time, not
in the middle of an epoch. The readers (``csv``, ``dicom``, ``imagefolder``) import this module;
it imports none of them.

DICOM grayscale pixels become float32 in [0, 1] the way a viewer shows them:

1. modality LUT (``RescaleSlope`` / ``RescaleIntercept`` or a Modality LUT Sequence);
2. VOI window (``WindowCenter`` / ``WindowWidth``, the first value when multi-valued, with the
   ``VOILUTFunction`` LINEAR, LINEAR_EXACT or SIGMOID); without a window the stored bit range
   (``BitsStored``, after rescale) maps onto [0, 1];
3. MONOCHROME1 (white = low values) is inverted so that bright always means dense.

RGB files are scaled by their bit depth. Multi-frame files contribute their first frame.
Compressed transfer syntaxes need the matching pydicom pixel plugin; without it the file
counts as unreadable.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut
from pydicom.valuerep import PersonName

from gsco_common.errors import InputLimitError
from registry.input_limits import max_pixels, open_image

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
    with open_image(path) as img:  # refuses decompression bombs before decoding (exit code 2)
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


# Attributes that can identify a patient, a study, staff or the institution (collected into
# SiteData.identifiers so that the export's PHI scan can refuse any artifact containing them).
IDENTIFYING_KEYWORDS = (
    "PatientID",
    "PatientName",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthDate",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MedicalRecordLocator",
    "IssuerOfPatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "RequestingPhysician",
    "StationName",
    "DeviceSerialNumber",
)


def decode_dicom(path: Path) -> Decoded:
    """Read one DICOM file: pixels as float32 in [0, 1] plus its identifying strings."""
    ds = pydicom.dcmread(path)
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if rows * columns > max_pixels():  # checked before the pixel data is decoded
        raise InputLimitError(
            f"{path.name}: {columns}x{rows} pixels is more than the limit of {max_pixels()} "
            "(GSCO_MAX_IMAGE_PIXELS)"
        )
    pixels = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        pixels = pixels[0]
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if photometric in ("MONOCHROME1", "MONOCHROME2") and pixels.ndim == 2:
        image = window_to_unit(apply_modality_lut(pixels, ds).astype(np.float64), ds)
        if photometric == "MONOCHROME1":
            image = 1.0 - image
    elif pixels.ndim == 3 and pixels.shape[-1] == 3:
        image = pixels.astype(np.float64) / float(2 ** int(ds.get("BitsStored", 8)) - 1)
    else:
        raise UnreadableImage(f"unsupported photometric interpretation {photometric!r}")
    patient_id = str(ds.get("PatientID", "") or "").strip() or None
    return Decoded(np.clip(image, 0.0, 1.0).astype(np.float32), dicom_identifiers(ds), patient_id)


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


def dicom_identifiers(ds: Dataset) -> set[str]:
    """Every identifying string of the header, person names also by their parts."""
    found: set[str] = set()
    for keyword in IDENTIFYING_KEYWORDS:
        value = ds.get(keyword)
        if value is None:
            continue
        for single in value if isinstance(value, MultiValue) else [value]:
            found.update(_strings_of(single))
    return {text for text in found if text}


def _strings_of(value: object) -> set[str]:
    text = str(value).strip()
    if not isinstance(value, PersonName):
        return {text}
    parts = [str(part).strip() for part in (value.given_name, value.family_name) if part]
    return {text, *parts, " ".join(parts), text.replace("^", " ").strip()}

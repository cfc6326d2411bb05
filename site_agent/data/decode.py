"""Decode one image file into a raw array, telling unreadable files apart from bugs.

PNG / JPEG / TIFF / BMP go through Pillow; ``.dcm`` / ``.dicom`` files through pydicom. Decoding
is eager (the loader keeps decoded arrays in memory), so a corrupt file is found at load time, not
in the middle of an epoch. The readers (``csv``, ``dicom``, ``imagefolder``) import this module;
it imports none of them.

DICOM pixels become float32 in [0, 1] through :func:`registry.bundle.dicom_pixels.dicom_to_unit`
(modality LUT, VOI window, MONOCHROME1 inversion), the code the hub runs on uploads, so a file
gives the same model input at the site and at the hub. Multi-frame files contribute their first
frame.
Compressed transfer syntaxes need the matching pydicom pixel plugin; without it the file
counts as unreadable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

from gsco_common.errors import InputLimitError
from registry.bundle.dicom_deflate import inflates_past
from registry.bundle.dicom_pixels import (
    DICOM_DECODE_ERRORS,
    DICOM_SUFFIXES,
    dicom_to_unit,
    frame_count,
    header_count,
)
from registry.bundle.raster_pixels import RASTER_DECODE_ERRORS, RASTER_SUFFIXES, pil_to_array
from registry.input_limits import MAX_ARRAY_BYTES_ENV, max_array_bytes, max_pixels, open_image

# What Pillow and pydicom raise on missing, truncated, corrupt or unsupported files. Anything
# else is a bug and propagates.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    *RASTER_DECODE_ERRORS,
    *DICOM_DECODE_ERRORS,
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
    return suffix in RASTER_SUFFIXES or suffix in DICOM_SUFFIXES


def decode_file(path: Path) -> Decoded:
    """Decode ``path``; raises one of :data:`DECODE_ERRORS` when it cannot be read."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return decode_dicom(path)
    return Decoded(decode_pil(path))


def try_decode(path: Path) -> Decoded | None:
    """:func:`decode_file`, or ``None`` when the file is missing, unreadable or not a regular file.

    A named pipe or device would block (or never end) when opened: a manifest row naming one
    made training hang.
    """
    try:
        if not path.is_file():
            return None
        return decode_file(path)
    except DECODE_ERRORS:
        return None


def decode_pil(path: Path) -> np.ndarray:
    """Grayscale -> ``[H, W]`` uint8 (uint16 for 16-bit files); anything else -> ``[H, W, 3]``."""
    with open_image(path) as img:  # refuses decompression bombs before decoding (exit code 2)
        img.load()
        return pil_to_array(img)


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
    refuse_deflate_bomb(path)
    ds = pydicom.dcmread(path)
    rows, columns = header_count(ds, "Rows", 0), header_count(ds, "Columns", 0)
    frames = frame_count(ds)  # below 1 is unreadable: pydicom would decode one frame of any size
    if rows * columns * frames > max_pixels():  # checked before the pixel data (all frames) is decoded
        raise InputLimitError(
            f"{path.name}: {frames} frame(s) of {columns}x{rows} pixels is more than the limit of "
            f"{max_pixels()} (GSCO_MAX_IMAGE_PIXELS)"
        )
    pixels = ds.pixel_array
    if frames > 1:
        pixels = pixels[0]
    image = dicom_to_unit(pixels, ds)
    patient_id = str(ds.get("PatientID", "") or "").strip() or None
    return Decoded(image, dicom_identifiers(ds), patient_id)


def refuse_deflate_bomb(path: Path) -> None:
    """Stop at a deflated DICOM file that inflates past ``GSCO_MAX_ARRAY_BYTES``, before pydicom.

    pydicom inflates that transfer syntax whole, even to read only the header: a megabyte on disk
    can take gigabytes of memory.
    """
    with path.open("rb") as stream:
        if inflates_past(stream, max_array_bytes()):
            raise InputLimitError(
                f"{path.name}: the deflated DICOM data set inflates to more than the limit of "
                f"{max_array_bytes()} bytes ({MAX_ARRAY_BYTES_ENV})",
                hint="export the file uncompressed or in an image compression, not deflated",
            )


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

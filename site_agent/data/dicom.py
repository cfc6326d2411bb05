"""DICOM: pixel decoding (modality LUT, VOI window, MONOCHROME1) and the folder + labels-CSV reader.

Grayscale pixels become float32 in [0, 1] the way a viewer shows them:

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

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut
from pydicom.valuerep import PersonName

from registry.errors import DataError
from site_agent.data.config import DataConfig
from site_agent.data.csv_manifest import read_table, row_item
from site_agent.data.decode import DECODE_ERRORS, DICOM_SUFFIXES, Decoded, UnreadableImage
from site_agent.data.sources import SourceItem, SourceRead, path_identifiers, register_source

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


_PATH_COLUMNS = ("path", "file", "filename", "file_name")
_UID_COLUMNS = ("sop_instance_uid", "sopinstanceuid")

Locator = Callable[[str], Path | None]


@register_source("dicom")
def read_dicom_folder(config: DataConfig, root: Path) -> SourceRead:
    """A folder of DICOM files plus a labels CSV (one row per image, read in row order).

    Rows keyed by ``path`` name a file relative to the folder, or by bare file name anywhere
    under it; rows keyed by ``sop_instance_uid`` are matched through the headers. A row whose
    file is missing, unreadable or unmatched counts as unreadable. Without a ``patient_id``
    column the file's PatientID groups images by patient.
    """
    if not root.is_dir():
        raise DataError("the DICOM data path is not a folder", hint="point data.path at the DICOM folder")
    labels_csv = config.labels_csv.expanduser() if config.labels_csv else root / "labels.csv"
    table = read_table(labels_csv, "data.labels_csv")
    files = sorted(path for path in root.rglob("*") if path.is_file() and _may_be_dicom(path))
    key_column, locate = _locator(table.columns, files, root)
    identifiers = path_identifiers(root, str(config.path)) | path_identifiers(labels_csv, None)
    for path in files:
        identifiers |= path_identifiers(path.relative_to(root))
    items: list[SourceItem] = []
    for row in table.rows:
        key = row.get(key_column, "").strip()
        identifiers |= {key, Path(key).name, Path(key).stem}
        path = locate(key) if key else None
        decoded = _try_decode(path) if path is not None else None
        items.append(row_item(row, decoded, identifiers))
    return SourceRead(items, {text for text in identifiers if text})


def _locator(columns: list[str], files: list[Path], root: Path) -> tuple[str, Locator]:
    """Pick the CSV key column and a function finding a row's file from its key."""
    path_column = next((column for column in columns if column in _PATH_COLUMNS), None)
    if path_column is not None:
        by_name: dict[str, list[Path]] = {}
        for path in files:
            by_name.setdefault(path.name, []).append(path)

        def locate(key: str) -> Path | None:
            if (root / key).is_file():
                return root / key
            matches = by_name.get(Path(key).name, [])
            return matches[0] if len(matches) == 1 else None

        return path_column, locate
    uid_column = next((column for column in columns if column in _UID_COLUMNS), None)
    if uid_column is None:
        raise DataError(
            "the DICOM labels CSV needs a 'path' or 'sop_instance_uid' column",
            hint="add one naming each image file (relative to the folder) or its SOPInstanceUID",
        )
    return uid_column, _files_by_uid(files).get


def _try_decode(path: Path) -> Decoded | None:
    try:
        return decode_dicom(path)
    except DECODE_ERRORS:
        return None


def _may_be_dicom(path: Path) -> bool:
    return path.suffix.lower() in DICOM_SUFFIXES or path.suffix == ""


def _files_by_uid(files: list[Path]) -> dict[str, Path]:
    keyed: dict[str, Path] = {}
    for path in files:
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except DECODE_ERRORS:
            continue
        uid = str(header.get("SOPInstanceUID", "")).strip()
        if uid:
            keyed[uid] = path
    return keyed

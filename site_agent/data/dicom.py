"""DICOM: the folder + labels-CSV reader (pixel decoding is :mod:`site_agent.data.decode`'s job)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pydicom

from gsco_common.errors import DataError
from registry.bundle.dicom_pixels import DICOM_SUFFIXES
from registry.input_limits import DecodedImagesBudget
from site_agent.data.config import DataConfig
from site_agent.data.csv_manifest import read_table, row_item
from site_agent.data.decode import DECODE_ERRORS, Decoded, decode_dicom, refuse_deflate_bomb
from site_agent.data.sources import SourceItem, SourceRead, list_files, path_identifiers, register_source

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
    files = [path for path in list_files(root, "data.path") if path.is_file() and _may_be_dicom(path)]
    key_column, locate = _locator(table.columns, files, root)
    identifiers = path_identifiers(root, str(config.path)) | path_identifiers(labels_csv, None)
    for path in files:
        identifiers |= path_identifiers(path.relative_to(root))
    budget = DecodedImagesBudget("data.path")
    items: list[SourceItem] = []
    for row in table.rows:
        key = row.get(key_column, "").strip()
        identifiers |= {key, Path(key).name, Path(key).stem}
        path = locate(key) if key else None
        decoded = _try_decode(path) if path is not None else None
        if decoded is not None:
            budget.take(decoded.image)
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
        try:  # the value is parsed on access: an unknown VR fails there, not in dcmread
            refuse_deflate_bomb(path)  # stop_before_pixels still inflates a deflated file whole
            uid = str(pydicom.dcmread(path, stop_before_pixels=True).get("SOPInstanceUID", "")).strip()
        except DECODE_ERRORS:
            continue
        if uid:
            keyed[uid] = path
    return keyed

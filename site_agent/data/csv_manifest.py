"""CSV manifest reader: ``path,label[,split][,patient_id]``, paths relative to the CSV's folder.

Also home of :func:`read_table` and :func:`row_item`, the CSV parsing and row handling shared
with the DICOM labels file. Paths may point at any image Pillow reads or at DICOM files (then
decoded as in :mod:`site_agent.data.dicom`, PatientID standing in for a missing ``patient_id``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from gsco_common.errors import DataError
from gsco_common.paths import not_there
from registry.input_limits import DecodedImagesBudget
from site_agent.data.config import DataConfig
from site_agent.data.decode import Decoded, try_decode
from site_agent.data.sources import SourceItem, SourceRead, path_identifiers, register_source


@dataclass
class Table:
    """A CSV file with lower-cased, stripped column names."""

    columns: list[str]
    rows: list[dict[str, str]]


def read_table(path: Path, key: str) -> Table:
    """Read a CSV with a header row; ``key`` names the config key in error messages."""
    try:  # stat fails in a folder without search permission
        exists = path.is_file()
    except OSError as exc:
        raise DataError(f"{key}: the CSV file cannot be read ({type(exc).__name__})") from None
    if not exists:
        raise DataError(
            f"{key}: the CSV file {not_there(path, 'file')}", hint="check the path in the data configuration"
        )
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [name.strip().lower() for name in reader.fieldnames or []]
            rows = [
                {column: (value or "") for column, value in zip(columns, raw.values(), strict=False)}
                for raw in reader
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{key}: the CSV file cannot be read ({type(exc).__name__})") from None
    if "label" not in columns:
        raise DataError(
            f"{key}: the CSV has no 'label' column", hint="the header row must name a 'label' column"
        )
    return Table(columns, rows)


@register_source("csv")
def read_csv_manifest(config: DataConfig, root: Path) -> SourceRead:
    """One row per image; a missing, unreadable or not regular file counts as unreadable (by row position)."""
    table = read_table(root, "data.path")
    if "path" not in table.columns:
        raise DataError(
            "data.path: the CSV manifest has no 'path' column",
            hint="columns: path,label[,split][,patient_id]",
        )
    base = root.parent
    identifiers = path_identifiers(root, str(config.path))
    budget = DecodedImagesBudget("data.path")
    items: list[SourceItem] = []
    for row in table.rows:
        given = row["path"].strip()
        path = Path(given).expanduser()
        decoded = try_decode(path if path.is_absolute() else base / path) if given else None
        if decoded is not None:
            budget.take(decoded.image)
        identifiers |= {given, path.name, path.stem}
        items.append(row_item(row, decoded, identifiers))
    return SourceRead(items, {text for text in identifiers if text})


def row_item(row: dict[str, str], decoded: Decoded | None, identifiers: set[str]) -> SourceItem:
    """The item of one labels row (``decoded``: its image, None when unreadable).

    A missing ``patient_id`` falls back to the file's PatientID; what identifies the patient
    joins ``identifiers``.
    """
    patient = row.get("patient_id", "").strip() or (decoded.patient_id if decoded else None)
    if decoded is not None:
        identifiers |= decoded.identifiers
    if patient:
        identifiers.add(patient)
    return SourceItem(
        label=row["label"].strip(),
        image=decoded.image if decoded else None,
        split=row.get("split"),
        patient_id=patient,
    )

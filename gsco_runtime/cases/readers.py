"""Read a labelled case collection (npz, ImageFolder or CSV) for the hub's case library.

The hub does not import ``site_agent``: the case library is the hub's own de-identified
reference database, so it has its own small readers. Case ids never come from file names (they
could identify a patient): they are a CSV's ``case_id`` column when given, otherwise generated.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gsco_common.errors import DataError
from registry.bundle.dicom_pixels import DICOM_SUFFIXES
from registry.bundle.raster_pixels import RASTER_DECODE_ERRORS, RASTER_SUFFIXES, pil_to_array
from registry.input_limits import (
    CORRUPT_NPZ_ERRORS,
    DecodedImagesBudget,
    check_image_stack,
    check_npz,
    label_indices,
    open_image,
)

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class RawCases:
    """Images with label indices, optional case ids and optional report texts."""

    images: list[np.ndarray]
    labels: np.ndarray
    case_ids: list[str] | None = None
    reports: list[str] | None = None


def read_image(path: Path) -> np.ndarray:
    """Read one image file as ``[H, W]`` (grayscale, uint8/uint16) or ``[H, W, 3]`` uint8."""
    try:
        with open_image(path) as img:
            img.load()
            return pil_to_array(img)
    except RASTER_DECODE_ERRORS:
        raise DataError(f"{path.name} cannot be read as an image", hint="check the file") from None


def label_matcher(label_names: Sequence[str]) -> Callable[[str], int]:
    """Map a label written in the data to its index: integer index, exact name, then case-insensitive."""
    exact = {name: i for i, name in enumerate(label_names)}
    folded = {name.casefold(): i for i, name in enumerate(label_names)}

    def match(raw: str) -> int:
        text = raw.strip()
        if text in exact:
            return exact[text]
        if text.casefold() in folded:
            return folded[text.casefold()]
        if text.lstrip("-").isdigit() and 0 <= int(text) < len(label_names):
            return int(text)
        raise DataError(
            f"label {text!r} is not one of the task's labels {list(label_names)}",
            hint="rename the label in the data or pick the right --task",
        )

    return match


def read_npz(path: Path, split: str, label_names: Sequence[str]) -> RawCases:
    """MedMNIST layout (``<split>_images`` / ``<split>_labels``) or plain ``images`` / ``labels``."""
    check_npz(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            image_key, label_key = f"{split}_images", f"{split}_labels"
            if image_key not in keys:
                image_key, label_key = "images", "labels"
            if image_key not in keys or label_key not in keys:
                raise DataError(
                    f"the npz file has no '{split}_images'/'{split}_labels' (nor 'images'/'labels')",
                    hint=f"available arrays: {sorted(keys)}",
                )
            images = np.asarray(data[image_key])
            labels = label_indices(data[label_key], f"{path.name}: '{label_key}'")
    except CORRUPT_NPZ_ERRORS:
        raise DataError(
            f"{path.name} cannot be read as an npz file", hint="check that it is a numpy .npz archive"
        ) from None
    check_image_stack(images, f"{path.name}: '{image_key}'")
    if images.shape[0] != labels.shape[0]:
        raise DataError("the npz file has different numbers of images and labels")
    if labels.size and (labels.min() < 0 or labels.max() >= len(label_names)):
        raise DataError(f"npz labels must be indices 0..{len(label_names) - 1} of the task's labels")
    return RawCases(images=[images[i] for i in range(images.shape[0])], labels=labels)


def _split_root(root: Path, split: str) -> Path:
    """An ImageFolder may be split (``root/train/<label>/...``) or flat (``root/<label>/...``)."""
    present = [name for name in SPLIT_NAMES if (root / name).is_dir()]
    if not present:
        return root
    if split not in present:
        raise DataError(f"the image folder has no '{split}' split", hint=f"available: {present}")
    return root / split


def read_imagefolder(path: Path, split: str, label_names: Sequence[str]) -> RawCases:
    """One sub-folder per label (names matched to the task's labels), images inside.

    The site's image suffixes are read (:data:`RASTER_SUFFIXES`); hidden files and files that
    are not images (``.txt``, ``Thumbs.db``) are ignored, as at the site. DICOM files are
    refused, not skipped: the library holds de-identified images, and a skipped file would
    leave the library smaller than the operator thinks.
    """
    root = _split_root(path, split)
    match = label_matcher(label_names)
    budget = DecodedImagesBudget("the image folder")
    images: list[np.ndarray] = []
    labels: list[int] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        index = match(folder.name)
        files = sorted(f for f in folder.rglob("*") if f.is_file() and not f.name.startswith("."))
        dicom = [f for f in files if f.suffix.lower() in DICOM_SUFFIXES]
        if dicom:
            raise DataError(
                f"label folder {folder.name!r} holds {len(dicom)} DICOM file(s): cases import "
                "reads de-identified PNG, JPEG, TIFF, BMP, GIF or WebP images",
                hint="export the images without their DICOM header (e.g. as PNG) and import those",
            )
        for file in files:
            if file.suffix.lower() in RASTER_SUFFIXES:
                images.append(budget.take(read_image(file)))
                labels.append(index)
    return RawCases(images=images, labels=np.asarray(labels, dtype=np.int64))


def _csv_rows(path: Path) -> tuple[list[dict[str, str | None]], list[str]]:
    """The rows and columns of a UTF-8 CSV (a byte-order mark, as spreadsheets write it, is fine)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            return list(reader), list(reader.fieldnames or [])
    except IsADirectoryError:
        raise DataError(
            f"{path.name} is a folder, not a case CSV", hint="drop --kind csv for a folder"
        ) from None
    except UnicodeDecodeError:
        raise DataError(f"{path.name} is not UTF-8 text", hint="save the case CSV as UTF-8") from None
    except csv.Error as exc:
        raise DataError(f"{path.name} is not a readable CSV: {exc}") from None


def _csv_image(base: Path, row: int, value: str) -> Path:
    """The image a CSV row names: inside the CSV's folder (no ``..`` out of it, no absolute path)."""
    inside = Path(os.path.normpath(base / value))
    if Path(value).is_absolute() or not inside.is_relative_to(os.path.normpath(base)):
        raise DataError(
            f"row {row}: path {value!r} is not inside the CSV's folder", hint="use relative paths"
        )
    if not inside.is_file():
        raise DataError(f"row {row}: no image file at {value!r}", hint="paths are relative to the CSV")
    return inside


def read_csv(path: Path, split: str, label_names: Sequence[str]) -> RawCases:
    """Columns ``path`` (relative to the CSV) and ``label``; optional ``case_id``, ``report``, ``split``.

    Rows are numbered from 1 after the header in errors.
    """
    match = label_matcher(label_names)
    rows, columns = _csv_rows(path)
    if not rows:
        raise DataError("the case CSV has no rows")
    missing = {"path", "label"} - set(columns)
    if missing:
        raise DataError(f"the case CSV lacks the column(s) {sorted(missing)}", hint="required: path, label")
    numbered = list(enumerate(rows, start=1))
    if "split" in columns:
        splits = {(row.get("split") or "train").strip().lower() for row in rows}
        numbered = [
            (n, row) for n, row in numbered if (row.get("split") or "train").strip().lower() == split.lower()
        ]
        if not numbered:
            raise DataError(
                f"the case CSV has no rows of split {split!r}", hint=f"its splits: {sorted(splits)}"
            )
    required = ["path", "label", *(["case_id"] if "case_id" in columns else [])]
    for n, row in numbered:
        empty = [column for column in required if not (row.get(column) or "").strip()]
        if empty:
            raise DataError(
                f"row {n}: no {' or '.join(empty)}", hint="every row needs a value in these columns"
            )
    budget = DecodedImagesBudget(path.name)
    images = [
        budget.take(read_image(_csv_image(path.parent, n, str(row["path"]).strip()))) for n, row in numbered
    ]
    labels = np.asarray([match(str(row["label"])) for _, row in numbered], dtype=np.int64)
    case_ids = [str(row["case_id"]).strip() for _, row in numbered] if "case_id" in columns else None
    reports = [row.get("report") or "" for _, row in numbered] if "report" in columns else None
    return RawCases(images=images, labels=labels, case_ids=case_ids, reports=reports)


READERS: dict[str, Callable[[Path, str, Sequence[str]], RawCases]] = {
    "npz": read_npz,
    "imagefolder": read_imagefolder,
    "csv": read_csv,
}


def detect_kind(path: Path) -> str:
    if path.is_dir():
        return "imagefolder"
    suffix = path.suffix.lower()
    if suffix in (".npz", ".csv"):
        return suffix[1:]
    raise DataError("cannot tell the case collection's format", hint="pass --kind npz|imagefolder|csv")


def read_cases(
    path: Path, label_names: Sequence[str], *, split: str = "train", kind: str = "auto"
) -> RawCases:
    """Read a case collection with the reader for ``kind`` (``auto`` picks it from the path)."""
    if not path.exists():
        raise DataError("the case collection was not found", hint="check the --data path")
    chosen = detect_kind(path) if kind == "auto" else kind
    if chosen not in READERS:
        raise DataError(f"unknown case collection kind {kind!r}", hint=f"use one of {sorted(READERS)}")
    cases = READERS[chosen](path, split, label_names)
    if len(cases.images) == 0:
        raise DataError(f"the case collection has no images in split '{split}'")
    return cases

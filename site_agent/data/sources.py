"""Registry of data-source readers (timm-style): ``@register_source("npz")`` fills a name table.

A reader turns a :class:`~site_agent.data.config.DataConfig` into a :class:`SourceRead`: every
image it found, in reading order, decoded eagerly (``None`` where the file could not be read),
with the raw label, the split and patient id the source gives (if any), and the identifying
strings it met. Label mapping, validation and splitting are the loader's job, shared by all.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gsco_common.errors import DataError
from site_agent.data.config import DataConfig

SPLIT_SYNONYMS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}


@dataclass
class SourceItem:
    """One image as the source describes it; ``image`` is ``None`` when it could not be read."""

    label: str
    image: np.ndarray | None
    split: str | None = None
    patient_id: str | None = None


@dataclass
class SourceRead:
    """Everything a reader found. ``integer_labels``: raw labels are class indices (npz)."""

    items: list[SourceItem]
    identifiers: set[str] = field(default_factory=set)
    integer_labels: bool = False


Reader = Callable[[DataConfig, Path], SourceRead]

_SOURCES: dict[str, Reader] = {}


def register_source(name: str) -> Callable[[Reader], Reader]:
    """Register the decorated function as the reader for ``kind: name``."""

    def decorate(reader: Reader) -> Reader:
        _SOURCES[name] = reader
        return reader

    return decorate


def list_sources() -> list[str]:
    return sorted(_SOURCES)


def get_source(kind: str) -> Reader:
    if kind not in _SOURCES:
        raise DataError(f"unknown data kind {kind!r}", hint=f"use one of {list_sources()}")
    return _SOURCES[kind]


_SUFFIX_KINDS = {".npz": "npz", ".csv": "csv"}


def detect_kind(root: Path, labels_csv: Path | None) -> str:
    """Pick the reader for ``kind: auto`` from the suffix or the folder layout."""
    try:  # a folder without search permission fails on the stat of labels.csv
        if root.is_dir():
            return "dicom" if labels_csv is not None or (root / "labels.csv").is_file() else "imagefolder"
    except OSError as exc:
        raise unreadable_folder("data.path", exc) from None
    kind = _SUFFIX_KINDS.get(root.suffix.lower())
    if kind is None:
        raise DataError(
            f"cannot tell the data kind from the suffix {root.suffix!r}",
            hint="set data.kind to one of npz, imagefolder, csv, dicom",
        )
    return kind


def unreadable_folder(where: str, exc: OSError) -> DataError:
    """The error for a data folder that cannot be listed; ``where`` names the part of the data.

    Never the folder's path: folder names can name patients (``benign/Smith_John``).
    """
    return DataError(
        f"{where}: a folder cannot be read ({type(exc).__name__}); its images would be left out",
        hint="give the user running site-agent read access (`find DATA -type d ! -readable` lists them)",
    )


def list_files(top: Path, where: str) -> list[Path]:
    """Every file under ``top``, sorted (folder links are not followed, as with ``Path.rglob``).

    An unreadable folder is a :class:`DataError`: ``Path.rglob`` skips it without a word, which
    silently left its images out of training.
    """

    def refuse(exc: OSError) -> None:
        raise unreadable_folder(where, exc) from None

    found: list[Path] = []
    for folder, _, names in os.walk(top, onerror=refuse):
        found.extend(Path(folder) / name for name in names)
    return sorted(found)


def normalise_split(value: str | None) -> str | None:
    """Map a split name from the data (``Validation``, ``training``...) to train/val/test."""
    if value is None or not value.strip():
        return None
    split = SPLIT_SYNONYMS.get(value.strip().lower())
    if split is None:
        raise DataError(
            f"unknown split name {value.strip()!r} in the data",
            hint="use train, val or test (or leave it empty to split by seed)",
        )
    return split


def path_identifiers(path: Path, given: str | None = None) -> set[str]:
    """The strings naming a file: as given, absolute, resolved, its name and its stem."""
    found = {str(path), str(path.absolute()), str(path.resolve()), path.name, path.stem}
    if given:
        found.add(given)
    return {value for value in found if value and value != "."}

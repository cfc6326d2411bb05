"""ImageFolder reader: ``root/<class>/<images>``, optionally ``root/<split>/<class>/<images>``.

The split level is recognised when every sub-folder of the root is a split name (train, val,
validation, test...). Files are read recursively inside each class folder in sorted order;
files that are not images by suffix (``.txt``, ``Thumbs.db``...) and hidden files are ignored.
"""

from __future__ import annotations

from pathlib import Path

from gsco_common.errors import DataError
from registry.input_limits import DecodedImagesBudget
from site_agent.data.config import DataConfig
from site_agent.data.decode import is_image_file, try_decode
from site_agent.data.sources import (
    SPLIT_SYNONYMS,
    SourceItem,
    SourceRead,
    list_files,
    path_identifiers,
    register_source,
    unreadable_folder,
)


def _subfolders(folder: Path, where: str) -> list[Path]:
    try:
        children = list(folder.iterdir())
    except OSError as exc:
        raise unreadable_folder(where, exc) from None
    return sorted(path for path in children if path.is_dir() and not path.name.startswith("."))


def _where(split: str | None, label: str | None) -> str:
    """The part of the data a folder is, for error messages (split and label, never paths)."""
    parts = ([f"class {label!r}"] if label else []) + ([f"split {split!r}"] if split else [])
    return ", ".join(["data.path", *parts])


@register_source("imagefolder")
def read_image_folder(config: DataConfig, root: Path) -> SourceRead:
    if not root.is_dir():
        raise DataError("data.path: an ImageFolder source must be a folder", hint="or set data.kind")
    top = _subfolders(root, "data.path")
    split_level = bool(top) and all(folder.name.lower() in SPLIT_SYNONYMS for folder in top)
    class_folders = (
        [(folder.name, sub) for folder in top for sub in _subfolders(folder, _where(folder.name, None))]
        if split_level
        else [(None, folder) for folder in top]
    )
    identifiers = path_identifiers(root, str(config.path))
    budget = DecodedImagesBudget("data.path")
    items: list[SourceItem] = []
    for split, folder in class_folders:
        files = [
            path
            for path in list_files(folder, _where(split, folder.name))
            if path.is_file() and is_image_file(path) and not path.name.startswith(".")
        ]
        for path in files:
            relative = path.relative_to(folder)
            identifiers |= {path.name, path.stem, str(relative), *relative.parent.parts}
            decoded = try_decode(path)
            if decoded is not None:
                identifiers |= decoded.identifiers
                budget.take(decoded.image)
            items.append(
                SourceItem(
                    label=folder.name,
                    image=decoded.image if decoded else None,
                    split=split,
                    patient_id=decoded.patient_id if decoded else None,
                )
            )
    return SourceRead(items, {text for text in identifiers if text})

"""``load_site_data``: read any source, map labels, check, split, and collect identifiers.

Images are decoded eagerly and kept in memory (raw arrays, as decoded): unreadable files are
found before training starts, and an epoch never touches the disk. That suits the sizes a
site trains on here (MedMNIST-sized to a few thousand full-size images); larger archives
should be downsampled before training.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np

from gsco_common.errors import DataError
from site_agent.data import csv_manifest, dicom, imagefolder, npz  # noqa: F401  (register the readers)
from site_agent.data.config import DataConfig
from site_agent.data.quality import degenerate_reason
from site_agent.data.sources import (
    SourceItem,
    SourceRead,
    detect_kind,
    get_source,
    normalise_split,
    path_identifiers,
)
from site_agent.data.splitting import assign_splits
from specialist.data import SPLITS, LabelledImages, SiteData

log = logging.getLogger(__name__)

_SHOWN = 10  # positions / labels listed in one message


def load_site_data(config: DataConfig, label_names: Sequence[str], seed: int) -> SiteData:
    """Read, validate and split a site's dataset onto the task's ordered ``label_names``.

    Raises:
        DataError: missing path, empty dataset, too many unreadable files, labels outside the
            task, a class absent from the data or from a split, or patients spanning splits.
    """
    names = _check_label_names(label_names)
    root = config.path.expanduser()
    if not root.exists():
        raise DataError("data.path does not exist", hint="check --data or data.path in site.yaml")
    kind = detect_kind(root, config.labels_csv) if config.kind == "auto" else config.kind
    read = get_source(kind)(config, root)
    total = len(read.items)
    if total == 0:
        raise DataError(f"no images found in the {kind} data source", hint="check --data or data.path")
    # unreadable files and degenerate images (NaN, constant, < 2x2) are skipped and counted
    skipped = [
        index
        for index, item in enumerate(read.items)
        if item.image is None or degenerate_reason(item.image) is not None
    ]
    _check_unreadable(skipped, total, config.max_unreadable_fraction)
    mapping = _map_labels(read, names, config.label_aliases)
    dropped = set(skipped)
    usable = [item for index, item in enumerate(read.items) if index not in dropped]
    labels = np.array([mapping[item.label] for item in usable], dtype=np.int64)
    _check_classes(labels, names, "data")
    split_of = assign_splits(
        labels.tolist(),
        [normalise_split(item.split) for item in usable],
        [item.patient_id for item in usable],
        {"val": config.val_fraction, "test": config.test_fraction},
        seed,
    )
    splits = {name: _subset(usable, labels, split_of, name) for name in SPLITS}
    if len(splits["val"]) == 0:
        raise DataError(
            "the data has no validation images", hint="set data.val_fraction > 0 or give a 'val' split"
        )
    for name, part in splits.items():
        if len(part) or name != "test":
            _check_classes(part.labels, names, f"the '{name}' split")
    identifiers = read.identifiers | path_identifiers(root, str(config.path))
    identifiers |= {item.patient_id for item in read.items if item.patient_id}
    if config.labels_csv is not None:
        identifiers |= path_identifiers(config.labels_csv, None)
    published = {name.lower() for name in (*names, *SPLITS)}
    return SiteData(
        label_names=names,
        splits=splits,
        kind=kind,
        skipped=skipped,
        total_seen=total,
        identifiers=frozenset(text for text in identifiers if text and text.lower() not in published),
    )


def _check_label_names(label_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(label_names)
    if len(names) < 2:
        raise DataError("a classifier needs at least two labels", hint="list two or more labels for the task")
    if len(set(names)) != len(names):
        raise DataError("the task's labels contain duplicates", hint="give every label once")
    return names


def _check_unreadable(skipped: list[int], total: int, limit: float) -> None:
    if not skipped:
        return
    share = len(skipped) / total
    shown = ", ".join(str(index) for index in skipped[:_SHOWN]) + (", ..." if len(skipped) > _SHOWN else "")
    summary = f"{len(skipped)} of {total} images ({share:.1%}) are missing or unreadable (positions {shown})"
    if share > limit:
        raise DataError(
            f"{summary}, above data.max_unreadable_fraction = {limit:.1%}",
            hint="repair or remove those files, or raise data.max_unreadable_fraction",
        )
    log.warning("%s; skipped", summary)


def _map_labels(read: SourceRead, names: tuple[str, ...], aliases: dict[str, str]) -> dict[str, int]:
    """Raw label -> index into ``names``; every unknown label is reported with its count."""
    bad_aliases = sorted({target for target in aliases.values() if target not in names})
    if bad_aliases:
        raise DataError(
            f"data.label_aliases maps onto labels the task does not have: {bad_aliases}",
            hint=f"the task's labels are {list(names)}",
        )
    folded = {name.lower(): index for index, name in enumerate(names)}
    counts = Counter(item.label for item in read.items)
    mapping: dict[str, int] = {}
    unknown: list[str] = []
    for raw in counts:
        if raw in aliases:
            mapping[raw] = names.index(aliases[raw])
        elif read.integer_labels:
            if raw.lstrip("-").isdigit() and 0 <= int(raw) < len(names):
                mapping[raw] = int(raw)
            else:
                unknown.append(raw)
        elif raw in names:
            mapping[raw] = names.index(raw)
        elif raw.lower() in folded:
            mapping[raw] = folded[raw.lower()]
        else:
            unknown.append(raw)
    if unknown:
        listed = ", ".join(f"{raw!r} ({counts[raw]} images)" for raw in sorted(unknown))
        raise DataError(
            f"{len(unknown)} label(s) in the data are not among the task's labels {list(names)}: {listed}",
            hint="map them with data.label_aliases or fix the data",
        )
    return mapping


def _check_classes(labels: np.ndarray, names: tuple[str, ...], where: str) -> None:
    present = set(np.unique(labels).tolist())
    if where == "data" and len(present) == 1:
        raise DataError(
            f"the data holds only one class ({names[present.pop()]!r})",
            hint="a classifier needs images of at least two classes",
        )
    missing = [names[index] for index in range(len(names)) if index not in present]
    if missing:
        hint = (
            "add images of these classes, or drop them from the task's labels"
            if where == "data"
            else "every split needs every class: add images, or let the split be carved by seed "
            "(data.val_fraction / data.test_fraction)"
        )
        raise DataError(f"{where} has no images of class(es) {missing}", hint=hint)


def _subset(usable: list[SourceItem], labels: np.ndarray, split_of: list[str], name: str) -> LabelledImages:
    indices = [index for index, split in enumerate(split_of) if split == name]
    images = [usable[index].image for index in indices]
    return LabelledImages(load_image=images.__getitem__, labels=labels[indices])

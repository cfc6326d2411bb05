"""What every data source produces: labelled images split into train / val / test.

Readers (``npz``, ``imagefolder``, ``csv``, ``dicom``) differ in how they find images; they all
return a :class:`SiteData`. Images stay raw here (``[H, W]`` or ``[H, W, 3]``, uint8 / uint16 /
float in [0, 1]); turning them into model inputs is the card's preprocessing
(:mod:`registry.bundle.preprocess`), shared with the hub.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass
class LabelledImages:
    """One split: images loaded on demand plus their integer labels (indices into label names)."""

    load_image: Callable[[int], np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def image(self, index: int) -> np.ndarray:
        return self.load_image(index)

    def class_counts(self, num_classes: int) -> list[int]:
        return np.bincount(self.labels.astype(np.int64), minlength=num_classes).tolist()

    def subset(self, indices: np.ndarray) -> LabelledImages:
        """The images at ``indices`` (in that order), still loaded on demand."""
        return LabelledImages(load_image=lambda i: self.image(int(indices[i])), labels=self.labels[indices])


@dataclass
class SiteData:
    """A site's dataset after reading, label mapping, validation and splitting.

    ``identifiers`` collects every string that could identify a patient or the site's storage
    (data root, file names, patient / study ids, DICOM names and UIDs). It never leaves the site:
    the export's PHI scan checks every published string against it.
    ``skipped`` holds the positions (in reading order) of unreadable files; never their paths.
    """

    label_names: tuple[str, ...]
    splits: dict[str, LabelledImages]
    kind: str
    skipped: list[int] = field(default_factory=list)
    total_seen: int = 0
    identifiers: frozenset[str] = frozenset()

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def split(self, name: str) -> LabelledImages:
        from gsco_common.errors import DataError

        if name not in self.splits or len(self.splits[name]) == 0:
            raise DataError(f"the dataset has no '{name}' split", hint=f"available: {sorted(self.splits)}")
        return self.splits[name]

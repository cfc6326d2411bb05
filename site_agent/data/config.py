"""Where a site's images are and how to read them: the ``data:`` block of ``site.yaml``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gsco_common.settings import validated
from registry.bundle.provenance import source_digest

TRAIN_SPLIT = "train"
SourceKind = Literal["auto", "npz", "imagefolder", "csv", "dicom"]


class DataConfig(BaseModel):
    """How to read one site's dataset.

    Attributes:
        path: a MedMNIST ``.npz`` file, an ImageFolder tree, a CSV manifest or a DICOM folder.
        kind: the reader; ``auto`` picks it from the suffix (``.npz``, ``.csv``) or, for a folder,
            ``dicom`` when ``labels_csv`` is set or the folder holds ``labels.csv``, else
            ``imagefolder``.
        labels_csv: DICOM only: CSV with ``label`` and a key column (``path``: path relative to
            ``path`` or a bare file name; or ``sop_instance_uid``), optional ``patient_id`` and
            ``split``. Defaults to ``<path>/labels.csv``.
        val_fraction: share of the pool carved out as validation when the source has no ``val``.
        test_fraction: share carved out as test when the source has no ``test`` (default 0.15, so
            that ``evaluate --split test`` always has held-out images; 0 disables the test split).
            The pool is ``train`` plus images without a split; carving is stratified by label
            (by patient when patient ids are known) and seeded.
        max_unreadable_fraction: abort when more than this share of the files cannot be read.
        label_aliases: raw label in the data -> task label (e.g. ``{"PNEUMONIA": "pneumonia"}``;
            for ``.npz`` the raw labels are the integers as text, ``{"0": "normal"}``). Without an
            alias, npz integer ``i`` is the task's ``i``-th label and other sources match label
            names exactly, then case-insensitively.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    kind: SourceKind = "auto"
    labels_csv: Path | None = None
    val_fraction: float = Field(default=0.15, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.15, ge=0.0, lt=1.0)
    max_unreadable_fraction: float = Field(default=0.05, ge=0.0, le=1.0)
    label_aliases: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> DataConfig:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must stay below 0.9 to leave training images")
        return self

    def training_set_digest(self) -> str:
        """The training set as a whole: the source's content, split ``train``, every image of it.

        Training images come from the source's ``train`` split (or its unsplit pool), from which
        validation and test images may be carved; a case library imported from that split
        overlaps the training data, so it gets this very digest.
        """
        return source_digest(self.path.expanduser(), TRAIN_SPLIT)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, key_prefix: str = "data") -> DataConfig:
        """Validate a mapping (e.g. the ``data:`` block of ``site.yaml``), naming the bad key."""
        return validated(
            cls, dict(data), what="", hint="fix this key in the data configuration", key_prefix=(key_prefix,)
        )

"""Site-agent fixtures: tiny data trees (the dev dataset is tests/conftest.py's ``dev_npz``)."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from site_agent.data.synthetic import synthetic_images
from tests.site_agent.dicom_files import write_dicom


def _class_images(counts: dict[str, int], size: int, seed: int) -> list[tuple[str, np.ndarray]]:
    labels = np.concatenate([np.full(n, index) for index, n in enumerate(counts.values())]).astype(int)
    images = synthetic_images(labels, size, len(counts), np.random.default_rng(seed))
    names = list(counts)
    return [(names[label], image) for label, image in zip(labels, images, strict=True)]


@pytest.fixture
def make_image_folder(tmp_path: Path) -> Callable[..., Path]:
    """Build ``root/[split/]class/img_NNN.png`` trees with tiny learnable images."""

    def build(counts: dict[str, int], *, splits: dict[str, float] | None = None, size: int = 16) -> Path:
        root = tmp_path / "imagefolder"
        for index, (label, image) in enumerate(_class_images(counts, size, seed=0)):
            split = _pick_split(index, splits)
            folder = root / split / label if split else root / label
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"img_{index:03d}.png")
        return root

    return build


def _pick_split(index: int, splits: dict[str, float] | None) -> str | None:
    if not splits:
        return None
    position = (index * 7919 % 100) / 100
    edge = 0.0
    for name, share in splits.items():
        edge += share
        if position < edge:
            return name
    return next(iter(splits))


@pytest.fixture
def make_csv_manifest(tmp_path: Path) -> Callable[..., Path]:
    """Write PNGs plus ``manifest.csv`` (path,label,patient_id[,split]); ``per_patient`` images each."""

    def build(
        counts: dict[str, int], *, per_patient: int = 3, with_split: bool = False, size: int = 16
    ) -> Path:
        root = tmp_path / "csvdata"
        (root / "images").mkdir(parents=True, exist_ok=True)
        rows = []
        for index, (label, image) in enumerate(_class_images(counts, size, seed=1)):
            name = f"images/scan_{index:03d}.png"
            Image.fromarray(image).save(root / name)
            row = {"path": name, "label": label, "patient_id": f"PAT-{label}-{index // per_patient:03d}"}
            if with_split:
                row["split"] = "val" if index % 5 == 0 else "train"
            rows.append(row)
        manifest = root / "manifest.csv"
        with manifest.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return manifest

    return build


@pytest.fixture
def make_dicom_folder(tmp_path: Path) -> Callable[..., Path]:
    """A folder of 16-bit MONOCHROME2 DICOMs (two per patient) plus ``labels.csv`` keyed by path."""

    def build(counts: dict[str, int], *, key: str = "path") -> Path:
        root = tmp_path / "dicom"
        rows = []
        for index, (label, image) in enumerate(_class_images(counts, 16, seed=2)):
            uid = generate_uid()
            name = f"series{index % 3}/im{index:03d}.dcm"
            patient = f"MRN{label[:3].upper()}{index // 2:04d}"
            write_dicom(root / name, image.astype(np.uint16) * 16, bits=16, patient_id=patient, sop_uid=uid)
            rows.append({key: name if key == "path" else uid, "label": label})
        with (root / "labels.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[key, "label"])
            writer.writeheader()
            writer.writerows(rows)
        return root

    return build


@pytest.fixture
def deny_folder(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Make folders behave as after ``chmod 000`` for a user without DAC override.

    The tests run as root, which chmod does not stop: listing the folder and stat-ing anything
    in it raise PermissionError instead.
    """
    denied: set[Path] = set()
    real_scandir, real_listdir, real_stat = os.scandir, os.listdir, os.stat

    def blocked(path: object, *, inside: bool) -> bool:
        if isinstance(path, int):
            return False
        target = Path(os.fspath(path)).absolute()  # type: ignore[arg-type]
        return any((folder in target.parents) if inside else target == folder for folder in denied)

    def scandir(path: object = ".") -> object:
        if blocked(path, inside=False):
            raise PermissionError(13, "Permission denied", os.fspath(path))  # type: ignore[arg-type]
        return real_scandir(path)  # type: ignore[arg-type]

    def listdir(path: object = ".") -> list[str]:
        if blocked(path, inside=False):
            raise PermissionError(13, "Permission denied", os.fspath(path))  # type: ignore[arg-type]
        return real_listdir(path)  # type: ignore[arg-type]

    def stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if blocked(path, inside=True):
            raise PermissionError(13, "Permission denied", os.fspath(path))  # type: ignore[arg-type]
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "listdir", listdir)
    monkeypatch.setattr(os, "stat", stat)
    return lambda folder: denied.add(folder.absolute())

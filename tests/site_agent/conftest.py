"""Site-agent fixtures: tiny data trees (the dev dataset is tests/conftest.py's ``dev_npz``)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from site_agent.data.synthetic import synthetic_images


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
def write_dicom() -> Callable[..., Path]:
    """Write a single-frame grayscale DICOM file with the given pixel encoding and header."""

    def write(
        path: Path,
        pixels: np.ndarray,
        *,
        photometric: str = "MONOCHROME2",
        bits: int = 8,
        slope: float | None = None,
        intercept: float | None = None,
        center: float | list[float] | None = None,
        width: float | list[float] | None = None,
        patient_id: str = "PID-0001",
        patient_name: str = "Doe^Jane",
        sop_uid: str | None = None,
    ) -> Path:
        uid = sop_uid or generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
        meta.MediaStorageSOPInstanceUID = uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = SecondaryCaptureImageStorage
        ds.SOPInstanceUID = uid
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.PatientID = patient_id
        ds.PatientName = patient_name
        ds.AccessionNumber = f"ACC{patient_id[-4:]}"
        ds.InstitutionName = "St Example Hospital"
        ds.ReferringPhysicianName = "Smith^Anna"
        ds.Modality = "CR"
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = bits
        ds.BitsStored = bits
        ds.HighBit = bits - 1
        ds.PixelRepresentation = 0
        if slope is not None:
            ds.RescaleSlope = slope
            ds.RescaleIntercept = intercept or 0.0
        if center is not None:
            ds.WindowCenter = center
            ds.WindowWidth = width
        ds.PixelData = pixels.astype(np.uint8 if bits == 8 else np.uint16).tobytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        return path

    return write


@pytest.fixture
def make_dicom_folder(tmp_path: Path, write_dicom: Callable[..., Path]) -> Callable[..., Path]:
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

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gsco_common.errors import DataError
from gsco_runtime.cases.library import build_library, load_library, save_library
from gsco_runtime.cases.readers import read_cases
from tests.damaged_npz import damaged_split

LABELS = ("normal", "pneumonia")


def _npz(path: Path, n: int = 12) -> Path:
    rng = np.random.default_rng(0)
    np.savez(
        path,
        train_images=rng.integers(0, 255, (n, 28, 28), dtype=np.uint8),
        train_labels=(np.arange(n) % 2).reshape(-1, 1).astype(np.uint8),
        val_images=rng.integers(0, 255, (4, 28, 28), dtype=np.uint8),
        val_labels=np.array([[0], [1], [0], [1]], dtype=np.uint8),
    )
    return path


def test_npz_split_and_generated_case_ids(tmp_path: Path) -> None:
    raw = read_cases(_npz(tmp_path / "dev.npz"), LABELS, split="val")
    assert len(raw.images) == 4 and raw.labels.tolist() == [0, 1, 0, 1]
    library = build_library("pneumonia", LABELS, raw)
    assert library.case_ids[0] == "pneumonia-000001"
    with pytest.raises(DataError, match="test_images"):
        read_cases(tmp_path / "dev.npz", LABELS, split="test")


def test_imagefolder_matches_label_names_case_insensitively(tmp_path: Path) -> None:
    root = tmp_path / "cases"
    for label, value in (("NORMAL", 10), ("Pneumonia", 200)):
        (root / "train" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((20, 24), value + i, np.uint8)).save(
                root / "train" / label / f"patient_{i}.png"
            )
    raw = read_cases(root, LABELS, split="train")
    assert sorted(raw.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    library = build_library("pneumonia", LABELS, raw)
    assert not any("patient" in cid for cid in library.case_ids)  # ids never come from file names
    (root / "train" / "covid").mkdir()
    with pytest.raises(DataError, match="covid"):
        read_cases(root, LABELS, split="train")


def test_csv_with_case_ids_reports_and_splits(tmp_path: Path) -> None:
    rows = []
    for i in range(4):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
        rows.append(
            {
                "path": f"{i}.png",
                "label": LABELS[i % 2],
                "case_id": f"C{i}",
                "report": f"r{i}",
                "split": "train" if i < 3 else "test",
            }
        )
    with (tmp_path / "cases.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    raw = read_cases(tmp_path / "cases.csv", LABELS, split="train")
    assert raw.case_ids == ["C0", "C1", "C2"] and raw.reports == ["r0", "r1", "r2"]
    assert raw.images[0].shape == (16, 16, 3)


def test_library_round_trip_and_digest(tmp_path: Path) -> None:
    raw = read_cases(_npz(tmp_path / "dev.npz"), LABELS)
    library = build_library("pneumonia", LABELS, raw)
    save_library(library, tmp_path / "home")
    again = load_library(tmp_path / "home", "pneumonia")
    assert again is not None
    assert again.digest == library.digest and again.case_ids == library.case_ids
    assert all(np.array_equal(a, b) for a, b in zip(again.images, library.images, strict=True))
    changed = raw.images[0].copy()
    changed[0, 0] ^= 1
    raw.images[0] = changed
    assert build_library("pneumonia", LABELS, raw).digest != library.digest
    assert load_library(tmp_path / "home", "other") is None


def test_errors_are_plain(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_cases(tmp_path / "missing.npz", LABELS)
    bad = tmp_path / "bad.npz"
    np.savez(bad, train_images=np.zeros((2, 4, 4), np.uint8), train_labels=np.array([0, 5]))
    with pytest.raises(DataError, match="indices"):
        read_cases(bad, LABELS)
    with pytest.raises(DataError, match="^damaged.npz cannot be read as an npz file"):
        read_cases(damaged_split(tmp_path / "damaged.npz"), LABELS, split="train")
    with pytest.raises(DataError, match="task id"):
        build_library("../etc", LABELS, read_cases(_npz(tmp_path / "ok.npz"), LABELS))

import csv
import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from gsco_common.errors import DataError
from site_agent.data.config import DataConfig
from site_agent.data.loader import load_site_data

LABELS = ["normal", "abnormal"]


def _rows(manifest: Path) -> list[dict[str, str]]:
    with manifest.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _write(manifest: Path, rows: list[dict[str, str]]) -> None:
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _patients_per_split(manifest: Path, seed: int) -> dict[str, set[str]]:
    """Split, then recover each image's patient through its pixels' position in reading order."""
    data = load_site_data(DataConfig(path=manifest), LABELS, seed=seed)
    rows = _rows(manifest)
    by_pixels = {}
    for row in rows:
        with Image.open(manifest.parent / row["path"]) as img:
            by_pixels[img.tobytes()] = row["patient_id"]
    found: dict[str, set[str]] = defaultdict(set)
    for name, part in data.splits.items():
        for index in range(len(part)):
            found[name].add(by_pixels[part.image(index).tobytes()])
    return found


def test_patients_never_span_splits(make_csv_manifest: Callable[..., Path]) -> None:
    manifest = make_csv_manifest({"normal": 60, "abnormal": 45}, per_patient=3)
    for seed in (0, 1, 2):
        found = _patients_per_split(manifest, seed)
        assert found["train"] and found["val"] and found["test"]
        assert not found["train"] & found["val"]
        assert not found["train"] & found["test"]
        assert not found["val"] & found["test"]


def test_patient_ids_and_file_names_are_identifiers(make_csv_manifest: Callable[..., Path]) -> None:
    manifest = make_csv_manifest({"normal": 9, "abnormal": 9})
    data = load_site_data(DataConfig(path=manifest), LABELS, seed=0)
    assert {
        "PAT-normal-000",
        "images/scan_000.png",
        "scan_000.png",
        "scan_000",
        "manifest.csv",
    } <= data.identifiers
    assert str(manifest.resolve()) in data.identifiers
    assert data.kind == "csv"


def test_given_split_column_is_respected(make_csv_manifest: Callable[..., Path]) -> None:
    manifest = make_csv_manifest({"normal": 30, "abnormal": 30}, per_patient=1, with_split=True)
    rows = _rows(manifest)
    data = load_site_data(DataConfig(path=manifest, test_fraction=0.0), LABELS, seed=0)
    assert len(data.split("val")) == sum(row["split"] == "val" for row in rows)
    assert len(data.split("train")) == sum(row["split"] == "train" for row in rows)


def test_a_patient_in_two_given_splits_is_refused(make_csv_manifest: Callable[..., Path]) -> None:
    manifest = make_csv_manifest({"normal": 30, "abnormal": 30}, per_patient=5, with_split=True)
    with pytest.raises(DataError, match="patient\\(s\\) have images in more than one") as caught:
        load_site_data(DataConfig(path=manifest), LABELS, seed=0)
    assert "PAT-" not in str(caught.value)


def test_unknown_split_value(make_csv_manifest: Callable[..., Path]) -> None:
    manifest = make_csv_manifest({"normal": 6, "abnormal": 6}, with_split=True)
    rows = _rows(manifest)
    rows[0]["split"] = "holdout"
    _write(manifest, rows)
    with pytest.raises(DataError, match="unknown split name 'holdout'"):
        load_site_data(DataConfig(path=manifest), LABELS, seed=0)


def test_missing_files_count_as_unreadable(make_csv_manifest: Callable[..., Path]) -> None:
    manifest = make_csv_manifest({"normal": 30, "abnormal": 30})
    (manifest.parent / "images" / "scan_005.png").unlink()
    data = load_site_data(DataConfig(path=manifest), LABELS, seed=0)
    assert data.skipped == [5] and data.total_seen == 60
    for index in (6, 7, 8):
        (manifest.parent / "images" / f"scan_{index:03d}.png").unlink()
    with pytest.raises(DataError, match="4 of 60 images") as caught:
        load_site_data(DataConfig(path=manifest), LABELS, seed=0)
    assert "scan_" not in str(caught.value)


def test_absolute_paths_are_accepted(make_csv_manifest: Callable[..., Path]) -> None:
    manifest = make_csv_manifest({"normal": 6, "abnormal": 6})
    rows = _rows(manifest)
    for row in rows:
        row["path"] = str(manifest.parent / row["path"])
    _write(manifest, rows)
    assert load_site_data(DataConfig(path=manifest), LABELS, seed=0).skipped == []


@pytest.mark.parametrize(
    ("header", "match"), [("file,label", "no 'path' column"), ("path,diagnosis", "'label'")]
)
def test_required_columns(tmp_path: Path, header: str, match: str) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(header + "\na.png,normal\n")
    with pytest.raises(DataError, match=match):
        load_site_data(DataConfig(path=manifest), LABELS, seed=0)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["csv", "dicom"])
def test_a_row_naming_a_named_pipe_counts_as_unreadable(
    make_csv_manifest: Callable[..., Path], make_dicom_folder: Callable[..., Path], kind: str
) -> None:
    """Opening a FIFO blocks until a writer comes: training hung forever on such a row."""
    if kind == "csv":
        manifest = make_csv_manifest({"normal": 30, "abnormal": 30})
        base = manifest.parent
    else:
        base = make_dicom_folder({"normal": 30, "abnormal": 30})
        manifest = base / "labels.csv"
    rows = _rows(manifest)
    os.mkfifo(base / "pipe.dcm")
    _write(manifest, [*rows, {**rows[0], "path": "pipe.dcm"}])
    config = DataConfig(path=manifest if kind == "csv" else base, max_unreadable_fraction=0.5)
    data = load_site_data(config, LABELS, seed=0)
    assert sum(len(data.split(name)) for name in ("train", "val", "test")) == len(rows)

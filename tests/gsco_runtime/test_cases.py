from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gsco_common.errors import DataError, InputLimitError, PrivacyError
from gsco_runtime.cases import library as library_module
from gsco_runtime.cases.library import StoredLibraryDigests, build_library, load_library, save_library
from gsco_runtime.cases.readers import RawCases, read_cases
from registry.input_limits import MAX_ARRAY_BYTES_ENV
from tests.damaged_npz import damaged_split
from tests.damaged_png import DAMAGED_PNG

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


def test_imagefolder_reads_every_image_the_site_reads_and_refuses_dicom(tmp_path: Path) -> None:
    folder = tmp_path / "cases" / "normal"
    folder.mkdir(parents=True)
    for i, suffix in enumerate(("png", "webp", "gif", "TIF")):
        Image.fromarray(np.full((16, 16), 10 * i, np.uint8)).save(folder / f"{i}.{suffix}")
    (folder / "notes.txt").write_text("not an image")  # neither an image nor DICOM: ignored
    (folder / ".hidden.png").write_bytes(b"")  # hidden files are ignored, as at the site
    raw = read_cases(tmp_path / "cases", LABELS, split="train")
    assert sorted(int(image.reshape(-1)[0]) for image in raw.images) == [0, 10, 20, 30]
    (folder / "scan.DCM").write_bytes(b"DICM")
    with pytest.raises(DataError, match="label folder 'normal' holds 1 DICOM file"):
        read_cases(tmp_path / "cases", LABELS, split="train")


@pytest.mark.parametrize("kind", ["imagefolder", "csv"])
def test_a_collection_larger_than_the_memory_limit_stops_at_the_image_that_passes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    folder = tmp_path / "cases" / "normal"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((16, 20), i, np.uint8)).save(folder / f"{i}.png")
    (tmp_path / "cases" / "cases.csv").write_text(
        "path,label\n" + "".join(f"normal/{i}.png,normal\n" for i in range(3))
    )
    data = tmp_path / "cases" / ("cases.csv" if kind == "csv" else "")
    monkeypatch.setenv(MAX_ARRAY_BYTES_ENV, str(3 * 16 * 20))
    assert len(read_cases(data, LABELS, split="train", kind=kind).images) == 3
    monkeypatch.setenv(MAX_ARRAY_BYTES_ENV, str(3 * 16 * 20 - 1))
    what = "cases.csv" if kind == "csv" else "the image folder"
    with pytest.raises(InputLimitError) as refused:
        read_cases(data, LABELS, split="train", kind=kind)
    assert (
        refused.value.message
        == f"{what}: the decoded images pass 959 bytes at image 3 ({MAX_ARRAY_BYTES_ENV})"
    )


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
    # as a spreadsheet saves it: a byte-order mark, and the split in capitals
    text = (tmp_path / "cases.csv").read_text().replace(",test\r\n", ",TEST\r\n")
    (tmp_path / "excel.csv").write_text(text, encoding="utf-8-sig")
    assert read_cases(tmp_path / "excel.csv", LABELS, split="test").case_ids == ["C3"]


def _write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def test_a_bad_case_csv_is_named_by_row_and_nothing_outside_its_folder_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "cases"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "outside.png")
    head = "path,label,case_id,split\n"
    cases = [
        ("missing-label.csv", head + "a.png,normal,C1,val\na.png,,C2,val\n", "^row 2: no label"),
        ("short-id.csv", head + "a.png,normal,C1,\na.png,normal\n", "^row 2: no case_id"),  # no split: train
        ("no-split.csv", head + "a.png,normal,C1,TRAIN\n", "^the case CSV has no rows of split 'val'"),
        (
            "escape.csv",
            head + "../outside.png,normal,C1,val\n",
            "^row 1: path '../outside.png' is not inside",
        ),
        (
            "absolute.csv",
            head + f"{tmp_path / 'outside.png'},normal,C1,val\n",
            "^row 1: path '/.*' is not inside",
        ),
        ("gone.csv", head + "gone.png,normal,C1,val\n", "^row 1: no image file at 'gone.png'"),
    ]
    for name, text, message in cases:
        with pytest.raises(DataError, match=message):
            read_cases(_write_csv(folder / name, text), LABELS, split="train" if "short" in name else "val")
    latin = _write_csv(folder / "latin.csv", "path,label,report\na.png,normal,caf\xe9\n", "latin-1")
    with pytest.raises(DataError, match="^latin.csv is not UTF-8 text"):
        read_cases(latin, LABELS)
    with pytest.raises(DataError, match="^cases is a folder, not a case CSV"):
        read_cases(folder, LABELS, kind="csv")


@pytest.mark.parametrize("damage", sorted(DAMAGED_PNG))
def test_a_damaged_png_named_by_a_case_csv_is_a_one_line_data_error(tmp_path: Path, damage: str) -> None:
    """Pillow raises ValueError / SyntaxError for these, not OSError: they were tracebacks."""
    (tmp_path / "damaged.png").write_bytes(DAMAGED_PNG[damage]())
    csv_path = _write_csv(tmp_path / "cases.csv", "path,label\ndamaged.png,normal\n")
    with pytest.raises(DataError) as refused:
        read_cases(csv_path, LABELS)
    assert str(refused.value) == "damaged.png cannot be read as an image (check the file)"


def test_fractional_npz_labels_are_refused_not_cut(tmp_path: Path) -> None:
    images = np.zeros((4, 8, 8), np.uint8)
    np.savez(tmp_path / "f.npz", train_images=images, train_labels=np.array([0.2, 1.9, 0.5, 0.99]))
    with pytest.raises(DataError, match="^f.npz: 'train_labels' holds labels that are not whole numbers"):
        read_cases(tmp_path / "f.npz", LABELS)
    np.savez(tmp_path / "w.npz", train_images=images, train_labels=np.array([0.0, 1.0, 1.0, 0.0]))
    assert read_cases(tmp_path / "w.npz", LABELS).labels.tolist() == [0, 1, 1, 0]


def _cases_with_ids(case_ids: list[str]) -> RawCases:
    images = [np.full((8, 8), i, np.uint8) for i in range(len(case_ids))]
    return RawCases(images=images, labels=np.arange(len(case_ids)) % 2, case_ids=case_ids)


def test_a_library_of_images_with_other_than_1_3_or_4_channels_is_refused_at_import(tmp_path: Path) -> None:
    """Before, five channels imported and then every diagnosis of the task failed."""
    labels = np.array([0, 1, 0, 1])
    np.savez(tmp_path / "c5.npz", train_images=np.zeros((4, 8, 8, 5), np.uint8), train_labels=labels)
    with pytest.raises(DataError, match=r"^c5.npz: 'train_images' has 5 channels \(expected N x H x W"):
        read_cases(tmp_path / "c5.npz", LABELS)
    for channels in (1, 3, 4):
        np.savez(
            tmp_path / "ok.npz", train_images=np.zeros((4, 8, 8, channels), np.uint8), train_labels=labels
        )
        assert read_cases(tmp_path / "ok.npz", LABELS).labels.tolist() == [0, 1, 0, 1]


def test_given_case_ids_must_be_opaque_url_safe_ids(tmp_path: Path) -> None:
    assert build_library("pneumonia", LABELS, _cases_with_ids(["c1", "case-17", "B.2_x"])).case_ids == (
        "c1",
        "case-17",
        "B.2_x",
    )
    planted = ["c1", "Smith, John DOB 1970-01-01", "c3", "a/../b", "jdoe@example.org"]
    with pytest.raises(DataError) as malformed:
        build_library("pneumonia", LABELS, _cases_with_ids(planted))
    assert malformed.value.message.startswith("the case_id of case row(s) 2, 4, 5 is not letters, digits")
    for identifying in ("MRN-1234567", "1970-01-01", "pacs.example.org", "acc-20240501"):
        with pytest.raises(PrivacyError) as refused:
            build_library("pneumonia", LABELS, _cases_with_ids(["c1", identifying]))
        assert refused.value.message == "the case_id of case row(s) 2 looks identifying"
        assert identifying not in refused.value.message + (refused.value.hint or "")


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


def test_the_stored_digest_is_parsed_again_only_when_an_import_replaced_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    raw = read_cases(_npz(tmp_path / "dev.npz"), LABELS)
    fewer = RawCases(images=raw.images[:5], labels=raw.labels[:5])
    first, second = build_library("pneumonia", LABELS, raw), build_library("pneumonia", LABELS, fewer)
    parsed: list[str] = []
    parse = library_module.stored_library_digest
    monkeypatch.setattr(
        library_module, "stored_library_digest", lambda h, task: parsed.append(task) or parse(h, task)
    )
    digests = StoredLibraryDigests(home)
    assert digests.digest("pneumonia") is None and parsed == []  # nothing imported: nothing to parse
    save_library(first, home)
    assert [digests.digest("pneumonia") for _ in range(3)] == [first.digest] * 3
    assert parsed == ["pneumonia"]
    save_library(second, home)
    assert digests.digest("pneumonia") == second.digest != first.digest
    assert parsed == ["pneumonia", "pneumonia"]
    (home / "hub" / "cases" / "pneumonia" / "cases.json").unlink()
    assert digests.digest("pneumonia") is None


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

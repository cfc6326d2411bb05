"""Every way a dataset can be unusable ends in a DataError that names no site path."""

from collections.abc import Callable
from pathlib import Path

import pytest

from gsco_common.errors import DataError
from site_agent.data.config import DataConfig
from site_agent.data.loader import load_site_data

LABELS = ["benign", "malignant"]


def _fails(config: DataConfig, labels: list[str], match: str) -> DataError:
    with pytest.raises(DataError, match=match) as caught:
        load_site_data(config, labels, seed=0)
    assert str(config.path) not in str(caught.value)
    return caught.value


def test_missing_path(tmp_path: Path) -> None:
    _fails(DataConfig(path=tmp_path / "nowhere.npz"), LABELS, "data.path does not exist")


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "benign").mkdir()
    _fails(DataConfig(path=tmp_path), LABELS, "no images found")


def test_empty_csv(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\n")
    _fails(DataConfig(path=manifest), LABELS, "no images found")


def test_unknown_labels_listed_with_counts(make_image_folder: Callable[..., Path]) -> None:
    root = make_image_folder({"benign": 6, "malignant": 6, "cyst": 3, "other": 2})
    error = _fails(DataConfig(path=root), LABELS, "2 label\\(s\\)")
    assert "'cyst' (3 images)" in error.message and "'other' (2 images)" in error.message
    load_site_data(DataConfig(path=root, label_aliases={"cyst": "benign", "other": "benign"}), LABELS, seed=0)


def test_alias_onto_a_label_the_task_lacks(make_image_folder: Callable[..., Path]) -> None:
    root = make_image_folder({"benign": 6, "malignant": 6})
    _fails(DataConfig(path=root, label_aliases={"benign": "cyst"}), LABELS, "label_aliases")


def test_class_missing_from_the_data(make_image_folder: Callable[..., Path]) -> None:
    root = make_image_folder({"benign": 6, "malignant": 6})
    error = _fails(DataConfig(path=root), [*LABELS, "normal"], "no images of class")
    assert "'normal'" in error.message


def test_only_one_class(make_image_folder: Callable[..., Path]) -> None:
    root = make_image_folder({"benign": 12})
    _fails(DataConfig(path=root), LABELS, "only one class")


def test_class_missing_from_a_given_split(make_image_folder: Callable[..., Path]) -> None:
    root = make_image_folder({"benign": 12, "malignant": 12}, splits={"train": 0.7, "val": 0.3})
    for path in (root / "val" / "malignant").iterdir():
        path.unlink()
    _fails(DataConfig(path=root), LABELS, "the 'val' split has no images of class")


def test_class_too_small_to_reach_every_split(make_image_folder: Callable[..., Path]) -> None:
    root = make_image_folder({"benign": 20, "malignant": 2})
    _fails(DataConfig(path=root), LABELS, "split has no images of class\\(es\\) \\['malignant'\\]")


def test_no_validation_split(make_image_folder: Callable[..., Path]) -> None:
    root = make_image_folder({"benign": 10, "malignant": 10})
    _fails(DataConfig(path=root, val_fraction=0.0), LABELS, "no validation images")


def test_every_file_unreadable(tmp_path: Path) -> None:
    for label in LABELS:
        (tmp_path / label).mkdir()
        (tmp_path / label / "x.png").write_bytes(b"garbage")
    _fails(DataConfig(path=tmp_path), LABELS, "2 of 2 images")


@pytest.mark.parametrize(("labels", "match"), [(["only"], "at least two labels"), (["a", "a"], "duplicates")])
def test_bad_task_labels(make_image_folder: Callable[..., Path], labels: list[str], match: str) -> None:
    _fails(DataConfig(path=make_image_folder({"a": 4, "b": 4})), labels, match)


def _patient_subfolder(root: Path, label: str) -> Path:
    """A sub-folder named after a patient, holding copies of some of the class's images."""
    folder = root / label / "Smith_John"
    folder.mkdir()
    for image in sorted((root / label).glob("*.png"))[:3]:
        (folder / image.name).write_bytes(image.read_bytes())
    return folder


def test_an_unreadable_sub_folder_is_an_error_not_skipped(
    make_image_folder: Callable[..., Path], deny_folder: Callable[[Path], None]
) -> None:
    root = make_image_folder({"benign": 6, "malignant": 6})
    deny_folder(_patient_subfolder(root, "benign"))
    error = _fails(
        DataConfig(path=root), LABELS, "class 'benign': a folder cannot be read \\(PermissionError\\)"
    )
    assert "Smith_John" not in str(error)


def test_an_unreadable_class_or_split_folder_is_an_error(
    make_image_folder: Callable[..., Path], deny_folder: Callable[[Path], None]
) -> None:
    root = make_image_folder({"benign": 12, "malignant": 12}, splits={"train": 0.7, "val": 0.3})
    deny_folder(root / "val" / "malignant")
    _fails(DataConfig(path=root), LABELS, "class 'malignant', split 'val': a folder cannot be read")
    deny_folder(root / "val")
    _fails(DataConfig(path=root), LABELS, "split 'val': a folder cannot be read")


@pytest.mark.parametrize("kind", ["auto", "imagefolder"])
def test_an_unreadable_data_folder_is_an_error(
    make_image_folder: Callable[..., Path], deny_folder: Callable[[Path], None], kind: str
) -> None:
    root = make_image_folder({"benign": 6, "malignant": 6})
    deny_folder(root)
    _fails(DataConfig(path=root, kind=kind), LABELS, "data.path: a folder cannot be read")


def test_an_unreadable_dicom_sub_folder_is_an_error(
    make_dicom_folder: Callable[..., Path], deny_folder: Callable[[Path], None]
) -> None:
    root = make_dicom_folder({"benign": 6, "malignant": 6})
    deny_folder(root / "series1")
    error = _fails(DataConfig(path=root), LABELS, "data.path: a folder cannot be read")
    assert "series1" not in str(error)
    deny_folder(root)
    _fails(DataConfig(path=root, kind="dicom"), LABELS, "cannot be read")

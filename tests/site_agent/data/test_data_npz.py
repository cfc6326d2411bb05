import zipfile
from pathlib import Path

import numpy as np
import pytest

from gsco_common.errors import DataError
from site_agent.data.config import DataConfig
from site_agent.data.loader import load_site_data
from site_agent.data.synthetic import write_synthetic_npz
from tests.damaged_npz import damaged_split

LABELS = ["normal", "pneumonia"]


def test_dev_npz_loads_with_a_stratified_test_split(dev_npz: tuple[Path, str]) -> None:
    path, source = dev_npz
    print(f"data used: {source}")
    data = load_site_data(DataConfig(path=path), LABELS, seed=0)
    with np.load(path) as raw:
        train_counts = np.bincount(raw["train_labels"].ravel(), minlength=2)
        val_counts = np.bincount(raw["val_labels"].ravel(), minlength=2)
    assert data.kind == "npz"
    assert data.split("val").class_counts(2) == val_counts.tolist()
    carved = np.array(data.split("test").class_counts(2))
    assert np.allclose(carved / train_counts, 0.15, atol=0.01)
    assert (np.array(data.split("train").class_counts(2)) + carved).tolist() == train_counts.tolist()
    assert data.total_seen == train_counts.sum() + val_counts.sum()
    assert data.skipped == []
    assert {path.name, path.stem, str(path.resolve())} <= data.identifiers
    assert data.split("train").image(0).shape[:2] == (28, 28)


def test_synthetic_file_is_labelled_and_in_medmnist_layout(tmp_path: Path) -> None:
    path = write_synthetic_npz(tmp_path / "syn.npz", n_per_class=10, size=20, num_classes=3)
    with np.load(path) as raw:
        assert "synthetic" in str(raw["about"])
        assert raw["train_images"].shape == (30, 20, 20)
        assert raw["train_images"].dtype == np.uint8
        assert raw["train_labels"].shape == (30, 1)
        assert sorted(raw.files) == ["about", "train_images", "train_labels", "val_images", "val_labels"]


def test_synthetic_data_is_learnable(tmp_path: Path) -> None:
    path = write_synthetic_npz(tmp_path / "syn.npz", n_per_class=60, seed=3)
    with np.load(path) as raw:
        x, y = raw["train_images"].reshape(120, -1) / 255.0, raw["train_labels"].ravel()
        xv, yv = raw["val_images"].reshape(-1, 784) / 255.0, raw["val_labels"].ravel()
    centroids = np.stack([x[y == k].mean(0) for k in (0, 1)])
    predicted = np.argmin(((xv[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (predicted == yv).mean() >= 0.9


def test_aliases_reorder_integer_labels(tmp_path: Path) -> None:
    path = write_synthetic_npz(tmp_path / "syn.npz", n_per_class=20)
    plain = load_site_data(DataConfig(path=path), ["a", "b"], seed=0)
    swapped = load_site_data(DataConfig(path=path, label_aliases={"0": "b", "1": "a"}), ["a", "b"], seed=0)
    assert np.array_equal(plain.split("val").labels, 1 - swapped.split("val").labels)


def test_unknown_integer_labels_are_listed_with_counts(tmp_path: Path) -> None:
    path = tmp_path / "three.npz"
    labels = np.array([0] * 5 + [1] * 5 + [2] * 3 + [7]).reshape(-1, 1)
    images = np.tile(np.arange(64, dtype=np.uint8).reshape(8, 8), (14, 1, 1))  # not constant: usable
    np.savez(path, train_images=images, train_labels=labels)
    with pytest.raises(DataError) as caught:
        load_site_data(DataConfig(path=path), LABELS, seed=0)
    assert "'2' (3 images)" in caught.value.message
    assert "'7' (1 images)" in caught.value.message


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros(3)}, "no '<split>_images'"),
        ({"train_images": np.zeros((3, 4, 4)), "train_labels": np.zeros((2, 1), int)}, "does not match"),
        ({"train_images": np.zeros((3, 4, 4)), "train_labels": np.zeros((3, 5), int)}, "multi-label"),
        ({"train_images": np.zeros((3, 4, 4)), "train_labels": np.zeros((3, 1))}, "integer"),
        (
            {"train_images": np.zeros((3, 4, 4, 5)), "train_labels": np.zeros((3, 1), int)},
            r"^data.path: 'train_images' has 5 channels \(expected N x H x W",
        ),
    ],
)
def test_malformed_npz(tmp_path: Path, arrays: dict, message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message):
        load_site_data(DataConfig(path=path), LABELS, seed=0)


@pytest.mark.parametrize("damage", ["truncated", "does not inflate"])
def test_corrupt_npz(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "broken.npz"
    if damage == "truncated":
        path.write_bytes(b"PK\x03\x04 not really a zip")
    else:
        damaged_split(path)
    with pytest.raises(DataError, match="cannot be read") as caught:
        load_site_data(DataConfig(path=path), LABELS, seed=0)
    assert str(tmp_path) not in str(caught.value)


def test_an_npz_member_that_is_no_numpy_array_is_named(tmp_path: Path) -> None:
    """np.load hands back the raw bytes of a member that is not a .npy file."""
    path = tmp_path / "odd.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("train_images.npy", b"garbage")
        archive.writestr("train_labels.npy", b"garbage")
    with pytest.raises(DataError) as caught:
        load_site_data(DataConfig(path=path), LABELS, seed=0)
    assert caught.value.message == "data.path: 'train_images' in the .npz file is not a NumPy array"

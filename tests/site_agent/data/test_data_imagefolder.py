from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gsco_common.errors import DataError
from site_agent.data.config import DataConfig
from site_agent.data.loader import load_site_data

LABELS = ["benign", "malignant"]


def test_flat_tree_is_split_by_seed(make_image_folder: Callable[..., Path]) -> None:
    root = make_image_folder({"benign": 30, "malignant": 20})
    (root / "benign" / "notes.txt").write_text("not an image")
    data = load_site_data(DataConfig(path=root), LABELS, seed=0)
    assert data.kind == "imagefolder"
    assert data.total_seen == 50
    # 15 % of 30 = 4.5 -> 5, of 20 = 3, per class and per carved split
    assert data.split("train").class_counts(2) == [20, 14]
    assert data.split("val").class_counts(2) == [5, 3]
    assert data.split("test").class_counts(2) == [5, 3]
    image = data.split("train").image(0)
    assert image.shape == (16, 16) and image.dtype == np.uint8


def test_split_level_is_kept(make_image_folder: Callable[..., Path]) -> None:
    root = make_image_folder({"benign": 40, "malignant": 40}, splits={"train": 0.6, "Validation": 0.4})
    data = load_site_data(DataConfig(path=root, test_fraction=0.0), LABELS, seed=0)
    on_disk = {split: sum(1 for _ in (root / split).rglob("*.png")) for split in ("train", "Validation")}
    assert len(data.split("train")) == on_disk["train"]
    assert len(data.split("val")) == on_disk["Validation"]
    assert len(data.splits["test"]) == 0


def test_folder_names_match_labels_case_insensitively(make_image_folder: Callable[..., Path]) -> None:
    root = make_image_folder({"BENIGN": 10, "Malignant": 10})
    data = load_site_data(DataConfig(path=root), LABELS, seed=0)
    assert data.split("train").class_counts(2) == [6, 6]
    assert "BENIGN" not in data.identifiers and "benign" not in data.identifiers


def test_colour_and_16_bit_images(tmp_path: Path) -> None:
    for label in LABELS:
        (tmp_path / label).mkdir()
        for index in range(6):
            # A gradient per image: constant images are unusable and would be skipped.
            ramp = np.arange(64, dtype=np.uint16).reshape(8, 8)
            colour = np.stack([(ramp * 3 + index * 10).astype(np.uint8)] * 3, axis=-1)
            Image.fromarray(colour).save(tmp_path / label / f"c{index}.jpg")
            Image.fromarray(ramp * 500 + 1000 * index).save(tmp_path / label / f"g{index}.png")
    data = load_site_data(DataConfig(path=tmp_path), LABELS, seed=0)
    shapes = {(data.split("train").image(i).shape, str(data.split("train").image(i).dtype)) for i in range(8)}
    assert shapes == {((8, 8, 3), "uint8"), ((8, 8), "uint16")}


def _corrupt(root: Path, count: int) -> list[Path]:
    victims = sorted((root / "benign").glob("*.png"))[:count]
    for path in victims:
        path.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return victims


def test_unreadable_files_are_skipped_by_position(make_image_folder: Callable[..., Path]) -> None:
    root = make_image_folder({"benign": 30, "malignant": 30})
    victims = _corrupt(root, 2)
    data = load_site_data(DataConfig(path=root), LABELS, seed=0)
    assert data.total_seen == 60
    assert data.skipped == [0, 1]
    assert sum(len(part) for part in data.splits.values()) == 58
    assert {path.name for path in victims} <= data.identifiers


def test_abort_above_the_unreadable_limit_names_positions_not_paths(
    make_image_folder: Callable[..., Path],
) -> None:
    root = make_image_folder({"benign": 30, "malignant": 30})
    victims = _corrupt(root, 4)
    with pytest.raises(DataError) as caught:
        load_site_data(DataConfig(path=root), LABELS, seed=0)
    text = str(caught.value)
    assert "4 of 60 images (6.7%)" in text and "positions 0, 1, 2, 3" in text
    assert "max_unreadable_fraction" in text
    assert all(path.name not in text and path.stem not in text for path in victims)
    assert str(root) not in text
    relaxed = load_site_data(DataConfig(path=root, max_unreadable_fraction=0.1), LABELS, seed=0)
    assert relaxed.skipped == [0, 1, 2, 3]


def test_identifiers_cover_root_and_file_names(make_image_folder: Callable[..., Path]) -> None:
    root = make_image_folder({"benign": 5, "malignant": 5})
    data = load_site_data(DataConfig(path=root), LABELS, seed=0)
    assert {str(root), str(root.resolve()), "img_000.png", "img_000", "img_009"} <= data.identifiers

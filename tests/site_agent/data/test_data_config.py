from pathlib import Path

import pytest
from pydantic import ValidationError

from gsco_common.errors import ConfigError, DataError
from site_agent.data.config import DataConfig
from site_agent.data.sources import detect_kind, get_source, list_sources


def test_defaults() -> None:
    config = DataConfig(path=Path("x.npz"))
    assert config.kind == "auto"
    assert config.labels_csv is None
    assert (config.val_fraction, config.test_fraction, config.max_unreadable_fraction) == (0.15, 0.15, 0.05)
    assert config.label_aliases == {}


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ({"path": "x", "val_fractoin": 0.2}, "data.val_fractoin"),
        ({"path": "x", "val_fraction": 1.5}, "data.val_fraction"),
        ({"path": "x", "kind": "parquet"}, "data.kind"),
        ({"path": "x", "max_unreadable_fraction": -0.1}, "data.max_unreadable_fraction"),
        ({"kind": "npz"}, "data.path"),
    ],
)
def test_from_mapping_names_the_bad_key(block: dict, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        DataConfig.from_mapping(block)
    assert caught.value.message.startswith(key + ":")


def test_fractions_must_leave_training_data() -> None:
    with pytest.raises(ValidationError, match="val_fraction \\+ test_fraction"):
        DataConfig(path=Path("x"), val_fraction=0.5, test_fraction=0.45)


def test_auto_detection(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    assert detect_kind(tmp_path / "a.NPZ", None) == "npz"
    assert detect_kind(tmp_path / "m.csv", None) == "csv"
    assert detect_kind(folder, None) == "imagefolder"
    assert detect_kind(folder, tmp_path / "labels.csv") == "dicom"
    (folder / "labels.csv").write_text("path,label\n")
    assert detect_kind(folder, None) == "dicom"
    with pytest.raises(DataError, match="data.kind"):
        detect_kind(tmp_path / "data.parquet", None)


def test_registry_lists_every_source() -> None:
    import site_agent.data.loader  # noqa: F401  (registers the readers)

    assert list_sources() == ["csv", "dicom", "imagefolder", "npz"]
    with pytest.raises(DataError, match="unknown data kind"):
        get_source("hdf5")

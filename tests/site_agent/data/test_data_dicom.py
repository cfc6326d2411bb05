import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest

from gsco_common.errors import DataError, InputLimitError
from registry.bundle.dicom_pixels import UnreadableImage, apply_window
from site_agent.data.config import DataConfig
from site_agent.data.decode import decode_file, try_decode
from site_agent.data.loader import load_site_data
from tests.properties.dicom_files import MALFORMED_DICOM, deflated_dicom, dicom_bytes, dicom_dataset
from tests.site_agent.dicom_files import write_dicom

RAMP8 = np.arange(256, dtype=np.uint16).reshape(16, 16)
LABELS = ["normal", "effusion"]


def test_8_bit_monochrome2_without_window(tmp_path: Path) -> None:
    image = decode_file(write_dicom(tmp_path / "a.dcm", RAMP8)).image
    assert image.dtype == np.float32 and image.shape == (16, 16)
    np.testing.assert_allclose(image, RAMP8 / 255.0, atol=1e-6)


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    mono2 = decode_file(write_dicom(tmp_path / "m2.dcm", RAMP8)).image
    mono1 = decode_file(write_dicom(tmp_path / "m1.dcm", RAMP8, photometric="MONOCHROME1")).image
    np.testing.assert_allclose(mono1, 1.0 - mono2, atol=1e-6)
    assert mono1[0, 0] == pytest.approx(1.0) and mono1[-1, -1] == pytest.approx(0.0)


def test_16_bit_rescale_and_window(tmp_path: Path) -> None:
    stored = np.linspace(0, 4000, 64).astype(np.uint16).reshape(8, 8)
    # modality values = 0.5 * stored - 1000 (HU-like); window 0 +- 400
    path = write_dicom(tmp_path / "ct.dcm", stored, bits=16, slope=0.5, intercept=-1000, center=0, width=801)
    image = decode_file(path).image
    hu = stored * 0.5 - 1000.0
    expected = np.clip((hu - (0 - 0.5)) / 800 + 0.5, 0, 1)
    np.testing.assert_allclose(image, expected, atol=1e-6)
    assert image.min() == 0.0 and image.max() == 1.0 and 0 < image[4, 0] < 1


def test_multi_valued_window_uses_the_first(tmp_path: Path) -> None:
    single = decode_file(write_dicom(tmp_path / "s.dcm", RAMP8, center=100, width=51)).image
    multi = decode_file(write_dicom(tmp_path / "m.dcm", RAMP8, center=[100, 40], width=[51, 400])).image
    np.testing.assert_allclose(multi, single)
    flat = single.ravel()  # pixel value == position; window [74.5, 124.5]
    assert flat[74] == 0.0 and flat[75] == pytest.approx(0.01) and flat[125] == 1.0


def test_monochrome1_with_window_and_16_bit_range(tmp_path: Path) -> None:
    stored = np.array([[0, 1024], [2048, 4095]], dtype=np.uint16)
    plain = decode_file(write_dicom(tmp_path / "p.dcm", stored, bits=16)).image
    np.testing.assert_allclose(plain, stored / 65535.0, atol=1e-6)
    windowed = decode_file(
        write_dicom(tmp_path / "w.dcm", stored, bits=16, photometric="MONOCHROME1", center=2048, width=4097)
    ).image
    np.testing.assert_allclose(windowed, 1.0 - np.clip((stored - 2047.5) / 4096 + 0.5, 0, 1), atol=1e-6)


@pytest.mark.parametrize(
    ("function", "expected"),
    [("LINEAR", [0.0, 0.5 + 0.5 / 99, 1.0]), ("LINEAR_EXACT", [0.0, 0.5, 1.0]), ("SIGMOID", [0.0, 0.5, 1.0])],
)
def test_window_functions(function: str, expected: list[float]) -> None:
    values = np.array([-1000.0, 50.0, 1000.0])
    np.testing.assert_allclose(apply_window(values, 50, 100, function), expected, atol=1e-6)


def test_identifiers_from_the_header(tmp_path: Path) -> None:
    path = write_dicom(
        tmp_path / "x.dcm",
        RAMP8,
        patient_id="MRN-7781",
        patient_name="Planted^Alice",
        sop_uid="1.2.826.0.1.99",
    )
    decoded = decode_file(path)
    assert decoded.patient_id == "MRN-7781"
    assert {"MRN-7781", "Planted^Alice", "Alice", "Planted", "Alice Planted", "St Example Hospital"} <= (
        decoded.identifiers
    )
    assert {"Smith^Anna", "ACC7781", "1.2.826.0.1.99"} <= decoded.identifiers
    header = pydicom.dcmread(path)
    assert {str(header.StudyInstanceUID), str(header.SeriesInstanceUID)} <= decoded.identifiers


def test_folder_with_labels_csv(make_dicom_folder: Callable[..., Path]) -> None:
    root = make_dicom_folder({"normal": 20, "effusion": 20})
    data = load_site_data(DataConfig(path=root), LABELS, seed=0)
    assert data.kind == "dicom" and data.total_seen == 40 and data.skipped == []
    assert data.split("train").image(0).dtype == np.float32
    assert {
        "MRNNOR0000",
        "im000.dcm",
        "im000",
        "series0/im000.dcm",
        "Doe^Jane",
        str(root),
    } <= data.identifiers
    assert len(data.split("val")) > 0 and len(data.split("test")) > 0


def test_patient_id_from_the_header_groups_the_split(make_dicom_folder: Callable[..., Path]) -> None:
    root = make_dicom_folder({"normal": 30, "effusion": 30})
    data = load_site_data(DataConfig(path=root), LABELS, seed=4)
    # two consecutive files share a patient: every split holds an even number of images per class
    for part in data.splits.values():
        assert all(count % 2 == 0 for count in part.class_counts(2))


def test_rows_keyed_by_sop_instance_uid(make_dicom_folder: Callable[..., Path], tmp_path: Path) -> None:
    root = make_dicom_folder({"normal": 10, "effusion": 10}, key="sop_instance_uid")
    labels_csv = tmp_path / "elsewhere.csv"
    (root / "labels.csv").rename(labels_csv)
    data = load_site_data(DataConfig(path=root, kind="dicom", labels_csv=labels_csv), LABELS, seed=0)
    assert data.total_seen == 20 and data.skipped == []
    assert "elsewhere.csv" in data.identifiers


def test_bare_file_names_and_unreadable_rows(make_dicom_folder: Callable[..., Path]) -> None:
    root = make_dicom_folder({"normal": 20, "effusion": 20})
    rows = list(csv.DictReader((root / "labels.csv").open()))
    for row in rows:
        row["path"] = Path(row["path"]).name
    rows[3]["path"] = "does_not_exist.dcm"
    (root / "series1" / "im010.dcm").write_bytes(b"DICM? no")
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label"])
        writer.writeheader()
        writer.writerows(rows)
    data = load_site_data(DataConfig(path=root, max_unreadable_fraction=0.1), LABELS, seed=0)
    assert data.skipped == [3, 10]
    with pytest.raises(DataError, match="2 of 40 images") as caught:
        load_site_data(DataConfig(path=root, max_unreadable_fraction=0.04), LABELS, seed=0)
    assert "im010" not in str(caught.value) and "does_not_exist" not in str(caught.value)


@pytest.mark.parametrize("malformed", sorted(MALFORMED_DICOM))
@pytest.mark.parametrize("key", ["path", "sop_instance_uid"])
def test_a_malformed_dicom_is_counted_as_unreadable(
    make_dicom_folder: Callable[..., Path], key: str, malformed: str
) -> None:
    """The files that were a 500 at the hub: the site skips and counts them, keyed by path or UID."""
    root = make_dicom_folder({"normal": 10, "effusion": 10}, key=key)
    (root / "series1" / "im010.dcm").write_bytes(MALFORMED_DICOM[malformed][1]())
    if key == "sop_instance_uid":  # the row names the malformed file by its own UID
        rows = list(csv.DictReader((root / "labels.csv").open()))
        rows[10][key] = "1.2.3.4"
        with (root / "labels.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[key, "label"])
            writer.writeheader()
            writer.writerows(rows)
    data = load_site_data(DataConfig(path=root, max_unreadable_fraction=0.1), LABELS, seed=0)
    assert data.skipped == [10] and data.total_seen == 20


def test_labels_csv_needs_a_key_column(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("label\nnormal\n")
    with pytest.raises(DataError, match="'path' or 'sop_instance_uid'"):
        load_site_data(DataConfig(path=tmp_path), LABELS, seed=0)


def test_missing_labels_csv(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data.labels_csv: the CSV file does not exist"):
        load_site_data(DataConfig(path=tmp_path, kind="dicom"), LABELS, seed=0)


@pytest.mark.parametrize("frames", ["0", "-1"])
def test_number_of_frames_below_one_is_unreadable_not_under_every_pixel_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frames: str
) -> None:
    """8 x 8 x 0 = 0 passed ``GSCO_MAX_IMAGE_PIXELS`` whatever the size; pydicom decodes a frame."""
    monkeypatch.setenv("GSCO_MAX_IMAGE_PIXELS", "16")
    ds = dicom_dataset()
    ds.NumberOfFrames = frames
    path = tmp_path / "nf.dcm"
    path.write_bytes(dicom_bytes(ds))
    with pytest.raises(UnreadableImage, match="NumberOfFrames"):
        decode_file(path)
    assert try_decode(path) is None  # skipped and counted as unreadable, like the other malformed headers


def test_a_deflated_file_inflating_past_the_array_limit_stops_before_pydicom_inflates_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pydicom inflates the deflated syntax whole, even for the header alone: a few KB became 2 MB."""
    monkeypatch.setenv("GSCO_MAX_ARRAY_BYTES", str(1024 * 1024))
    bomb, fine, plain = tmp_path / "bomb.dcm", tmp_path / "fine.dcm", tmp_path / "plain.dcm"
    bomb.write_bytes(deflated_dicom(2 * 1024 * 1024))
    fine.write_bytes(deflated_dicom(512 * 1024))
    plain.write_bytes(dicom_bytes(dicom_dataset()))
    assert bomb.stat().st_size < 64 * 1024
    with pytest.raises(InputLimitError) as refused:
        decode_file(bomb)
    assert refused.value.message == (
        "bomb.dcm: the deflated DICOM data set inflates to more than the limit of 1048576 bytes "
        "(GSCO_MAX_ARRAY_BYTES)"
    )
    assert np.array_equal(decode_file(fine).image, decode_file(plain).image)

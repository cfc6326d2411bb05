"""Hostile DICOM headers and degenerate images: refused or skipped and counted, never trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from gsco_common.errors import InputLimitError
from registry.bundle.dicom_pixels import UnreadableImage, apply_window
from site_agent.data.config import DataConfig
from site_agent.data.decode import decode_file, try_decode
from site_agent.data.loader import load_site_data
from tests.site_agent.dicom_files import write_dicom

RAMP = np.arange(256, dtype=np.uint16).reshape(16, 16)


def _edit(path: Path, **changes: object) -> Path:
    ds = pydicom.dcmread(path)
    for key, value in changes.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    ds.save_as(path)
    return path


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_window_width_zero_never_yields_nan(function: str) -> None:
    with pytest.raises(UnreadableImage, match="WindowWidth must be"):
        apply_window(np.arange(4.0), 2.0, 0.0, function)


def test_dicom_with_window_width_zero_is_skipped(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "w0.dcm", RAMP, center=100.0, width=0.0)
    assert try_decode(path) is None


def test_dicom_without_pixel_data_or_with_odd_photometry_is_skipped(tmp_path: Path) -> None:
    missing = _edit(write_dicom(tmp_path / "nopix.dcm", RAMP), PixelData=None)
    odd = _edit(write_dicom(tmp_path / "ybr.dcm", RAMP), PhotometricInterpretation="YBR_FULL")
    assert try_decode(missing) is None and try_decode(odd) is None


def test_dicom_claiming_a_huge_matrix_is_refused_before_decoding(tmp_path: Path) -> None:
    path = _edit(write_dicom(tmp_path / "huge.dcm", RAMP), Rows=20000, Columns=20000)
    with pytest.raises(InputLimitError) as refused:
        decode_file(path)
    assert refused.value.message == (
        "huge.dcm: 1 frame(s) of 20000x20000 pixels is more than the limit of 40000000 "
        "(GSCO_MAX_IMAGE_PIXELS)"
    )
    assert refused.value.exit_code == 2


def test_dicom_claiming_many_frames_is_refused_before_decoding(tmp_path: Path) -> None:
    """Every frame is decoded at once: a million frames of a small matrix ask for gigabytes."""
    path = _edit(write_dicom(tmp_path / "frames.dcm", RAMP), NumberOfFrames=1_000_000)
    rows, columns = RAMP.shape[:2]
    with pytest.raises(InputLimitError) as refused:
        decode_file(path)
    assert refused.value.message == (
        f"frames.dcm: 1000000 frame(s) of {columns}x{rows} pixels is more than the limit of 40000000 "
        "(GSCO_MAX_IMAGE_PIXELS)"
    )


def test_constant_and_one_pixel_images_are_skipped_and_counted(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for label in ("normal", "effusion"):
        (root / label).mkdir(parents=True)
        for i in range(20):
            Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(
                root / label / f"{i:03d}.png"
            )
    Image.fromarray(np.full((16, 16), 7, dtype=np.uint8)).save(root / "normal" / "zz_constant.png")
    Image.fromarray(np.zeros((1, 1), dtype=np.uint8) + 9).save(root / "effusion" / "zz_tiny.png")
    data = load_site_data(DataConfig(path=root, max_unreadable_fraction=0.1), ["normal", "effusion"], seed=0)
    assert len(data.skipped) == 2 and data.total_seen == 42
    assert sum(len(part) for part in data.splits.values()) == 40

"""The upload intake bounds what is allocated, not only what is decoded (direct, no server).

A very wide image padded to a square for the model, a DICOM whose ``NumberOfFrames`` is 0 and a
deflated DICOM that inflates far beyond its size each exhausted the hub's memory before.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from gsco_common.errors import ImageError, PayloadTooLargeError, RuntimeServiceError
from hub.service.intake import decode
from hub.service.routes_clinical import _pads
from tests.properties.dicom_files import deflated_dicom, dicom_bytes, dicom_dataset

MB = 1024 * 1024
LIMITS = {"max_bytes": MB, "max_pixels": 1_000_000}


def _wide_png(width: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.arange(width) % 251).astype(np.uint8)[None, :]).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_wide_image_is_refused_when_a_specialist_pads_it_to_a_square() -> None:
    """1 x 60 000 is 60 000 pixels, under the limit; padded it would be 3.6e9 (13 GiB as float32)."""
    data = _wide_png(60_000)
    with pytest.raises(ImageError) as refused:
        decode(data, **LIMITS, pads=True)
    assert refused.value.code == "GSCO-822" and refused.value.http_status == 422
    assert "padded to a square" in refused.value.message
    assert f"more than {LIMITS['max_pixels']} pixels" in refused.value.message
    # resized straight to a square (``stretch``), no square is made: the image is what allocates
    assert decode(data, **LIMITS, pads=False).pixels.shape == (1, 60_000)


def test_a_wide_dicom_is_refused_when_a_specialist_pads_it_to_a_square() -> None:
    ds = dicom_dataset()
    ds.Rows, ds.Columns = 1, 2_000  # 2 000 pixels; padded 4 000 000
    ds.PixelData = (np.arange(2_000, dtype=np.uint16) % 4096).tobytes()
    with pytest.raises(ImageError, match="padded to a square .* more than 1000000 pixels"):
        decode(dicom_bytes(ds), **LIMITS, pads=True)
    assert decode(dicom_bytes(ds), **LIMITS, pads=False).pixels.shape == (1, 2_000)


def test_the_square_is_held_to_the_runtime_limit_when_lower(monkeypatch: pytest.MonkeyPatch) -> None:
    """A square under ``max_pixels`` but over ``GSCO_MAX_IMAGE_PIXELS`` would fail later in the
    runtime's padding with another code (413 GSCO-210): the intake refuses it as every other square."""
    monkeypatch.setenv("GSCO_MAX_IMAGE_PIXELS", "250000")
    data = _wide_png(600)  # padded: 360 000, under max_pixels (1 000 000), over the runtime's 250 000
    refusal = r"padded to a square for the model \(600x600\) has more than 250000 pixels"
    with pytest.raises(ImageError, match=refusal):
        decode(data, **LIMITS, pads=True)
    assert decode(_wide_png(500), **LIMITS, pads=True).pixels.shape == (1, 500)  # 250 000: at the limit


def _hub_serving(*geometries: str) -> SimpleNamespace:
    specialists = [
        SimpleNamespace(info=SimpleNamespace(preprocessing=SimpleNamespace(resize=g))) for g in geometries
    ]
    pool = SimpleNamespace(snapshot=lambda task_id: SimpleNamespace(specialists=specialists))
    return SimpleNamespace(runtime=SimpleNamespace(engine=SimpleNamespace(pool=pool)))


def test_the_square_is_counted_when_any_specialist_of_the_task_pads() -> None:
    assert _pads(_hub_serving("stretch", "pad"), "t") is True
    assert _pads(_hub_serving("stretch", "stretch"), "t") is False

    def nothing_loaded(task_id: str) -> None:
        raise RuntimeServiceError("no approved specialist is loaded")

    unloaded = SimpleNamespace(
        runtime=SimpleNamespace(engine=SimpleNamespace(pool=SimpleNamespace(snapshot=nothing_loaded)))
    )
    assert _pads(unloaded, "t") is True  # the stricter count


@pytest.mark.parametrize("frames", ["0", "-1"])
def test_number_of_frames_below_one_is_refused_naming_the_attribute(frames: str) -> None:
    """8 x 8 x 0 = 0 passed any pixel limit, yet pydicom decodes one frame (of any size)."""
    ds = dicom_dataset()
    ds.NumberOfFrames = frames
    with pytest.raises(ImageError) as refused:
        decode(dicom_bytes(ds), max_bytes=MB, max_pixels=16)
    assert refused.value.code == "GSCO-822"
    assert "NumberOfFrames" in refused.value.message and frames not in refused.value.message


def test_a_deflated_dicom_inflating_past_the_upload_limit_is_refused() -> None:
    data = deflated_dicom(2 * MB)  # a few KB on the wire, 2 MB inflated, over the 1 MB limit
    assert len(data) < 64 * 1024
    with pytest.raises(PayloadTooLargeError) as refused:
        decode(data, **LIMITS)
    assert refused.value.code == "GSCO-813" and refused.value.http_status == 413
    assert "inflates to more than the upload limit of 1 MB" in refused.value.message


def test_a_deflated_dicom_within_the_limit_decodes_as_the_uncompressed_one() -> None:
    plain = decode(dicom_bytes(dicom_dataset()), **LIMITS).pixels
    assert np.array_equal(decode(deflated_dicom(MB // 2), **LIMITS).pixels, plain)

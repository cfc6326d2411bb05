"""The hub's upload decoder on hostile DICOM, PNG and JPEG bytes: an ImageError/413, nothing else."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import given
from PIL import Image

from hub.service.intake import decode
from tests.properties.dicom_files import HOSTILE_DICOM, dicom_bytes, dicom_dataset
from tests.properties.hostile import PROPERTY, mutated_bytes, only_own_errors

LIMITS = {"max_bytes": 1 << 20, "max_pixels": 1 << 16}


def _raster(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16)).save(buffer, format=fmt)
    return buffer.getvalue()


def test_the_valid_files_decode() -> None:
    for data in (dicom_bytes(dicom_dataset()), _raster("PNG"), _raster("JPEG")):
        assert decode(data, **LIMITS).pixels.shape == (16, 16) or data[128:132] == b"DICM"


@PROPERTY
@given(data=HOSTILE_DICOM)
def test_a_hostile_dicom_upload_is_refused_with_an_image_error(data: bytes) -> None:
    only_own_errors(lambda: decode(data, **LIMITS))


@PROPERTY
@given(data=mutated_bytes(_raster("PNG")) | mutated_bytes(_raster("JPEG")))
def test_a_damaged_png_or_jpeg_upload_is_refused_with_an_image_error(data: bytes) -> None:
    only_own_errors(lambda: decode(data, **LIMITS))

"""The site's image decoder on hostile DICOM files: a skip (``None``) or a GscoError, nothing else.

``decode_file`` documents :data:`DECODE_ERRORS` (``UnreadableImage`` among them) as "this file
cannot be read"; the readers turn those into a counted skip through ``try_decode``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given

from site_agent.data.decode import Decoded, try_decode
from tests.properties.dicom_files import HOSTILE_DICOM, dicom_bytes, dicom_dataset
from tests.properties.hostile import PROPERTY, only_own_errors


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("site-dicom") / "image.dcm"


def _decoded_in_unit_range(path: Path) -> None:
    decoded = try_decode(path)
    if decoded is not None:
        # NaN pixels (a NaN window or slope) are allowed here: the loader skips non-finite images
        image = decoded.image
        assert image.dtype == np.float32 and bool((np.isnan(image) | ((image >= 0) & (image <= 1))).all())


def test_the_valid_file_decodes(path: Path) -> None:
    path.write_bytes(dicom_bytes(dicom_dataset()))
    assert isinstance(try_decode(path), Decoded)


@PROPERTY
@given(data=HOSTILE_DICOM)
def test_a_hostile_dicom_is_skipped_refused_or_decoded_to_unit_floats(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    only_own_errors(lambda: _decoded_in_unit_range(path))

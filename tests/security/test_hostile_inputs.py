"""Hostile files at the parsers: decompression bombs and forged .npz array headers.

Each gives a one-line error naming the file and the limit (GSCO-210, exit code 2), read from the
header before anything large is allocated.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from gsco_common.errors import InputLimitError
from gsco_runtime.cases.readers import read_image
from gsco_runtime.cases.readers import read_npz as hub_read_npz
from registry.input_limits import DEFAULT_MAX_PIXELS
from site_agent.data.config import DataConfig
from site_agent.data.decode import decode_pil
from site_agent.data.npz import read_npz as site_read_npz


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG claiming ``width x height`` pixels in a few dozen bytes (no pixel data to speak of)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    return path


def _forged_npz(path: Path) -> Path:
    """train_images claims a (10**6, 10**6) uint8 array but holds 16 bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 10**6)}
    )
    labels = io.BytesIO()
    np.save(labels, np.zeros((1, 1), dtype=np.int64))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("train_images.npy", header.getvalue() + bytes(16))
        archive.writestr("train_labels.npy", labels.getvalue())
    return path


@pytest.mark.parametrize(
    ("width", "height", "message"),
    [
        (8000, 8000, f"bomb.png: 8000x8000 pixels is more than the limit of {DEFAULT_MAX_PIXELS} "),
        (20000, 20000, f"bomb.png: the image has more than {DEFAULT_MAX_PIXELS} pixels"),  # Pillow's own
    ],
)
def test_decompression_bomb_is_refused_by_site_and_hub_readers(
    tmp_path: Path, width: int, height: int, message: str
) -> None:
    bomb = _png_header_only(tmp_path / "bomb.png", width, height)
    for reader in (decode_pil, read_image):
        with pytest.raises(InputLimitError) as refused:
            reader(bomb)
        assert refused.value.message.startswith(message) and "GSCO_MAX_IMAGE_PIXELS" in refused.value.message
        assert refused.value.exit_code == 2 and "\n" not in refused.value.message


def test_forged_npz_header_is_refused_by_site_and_hub_readers(tmp_path: Path) -> None:
    forged = _forged_npz(tmp_path / "forged.npz")
    expected = "forged.npz: array train_images claims 1000000000000 bytes, more than the limit of 4294967296"
    with pytest.raises(InputLimitError, match=expected):
        site_read_npz(DataConfig(path=forged), forged)
    with pytest.raises(InputLimitError, match=expected):
        hub_read_npz(forged, "train", ["normal", "pneumonia"])


def test_npz_header_claiming_more_than_the_file_holds_is_refused(tmp_path: Path) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (1000, 28, 28)}
    )
    path = tmp_path / "short.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("train_images.npy", header.getvalue() + bytes(100))
    with pytest.raises(InputLimitError, match="claims 784000 bytes but holds 100 \\(forged header\\)"):
        hub_read_npz(path, "train", ["normal", "pneumonia"])

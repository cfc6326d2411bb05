"""PNG files damaged the ways Pillow reports outside ``OSError``: ``ValueError`` and ``SyntaxError``."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16)).save(buffer, format="PNG")
    return buffer.getvalue()


def truncated_ihdr() -> bytes:
    """An IHDR chunk of 12 bytes instead of 13 (Pillow: ``ValueError: Truncated IHDR chunk``)."""
    png = _png()
    return png[:8] + _chunk(b"IHDR", png[16:28]) + png[33:]


def broken_chunk() -> bytes:
    """The image data split over two IDAT chunks, the second one's type mangled (Pillow, while
    decoding: ``SyntaxError: broken PNG file``)."""
    png = _png()
    at = png.index(b"IDAT")
    data = png[at + 4 : at + 4 + struct.unpack(">I", png[at - 4 : at])[0]]
    return png[: at - 4] + _chunk(b"IDAT", data[:5]) + _chunk(b"I\x00AT", data[5:]) + _chunk(b"IEND", b"")


DAMAGED_PNG = {"truncated IHDR": truncated_ihdr, "broken chunk": broken_chunk}

"""Safety limits for files handed to the parsers (site data, the hub's case collections).

A hostile or broken file must give a one-line error naming the file and the limit
(:class:`InputLimitError`, exit code 2), never a ``MemoryError``, a multi-GB allocation or a raw
``DecompressionBombError``. Images are checked from their header before any pixel is decoded;
``.npz`` members from their ``.npy`` header before any array is read.
"""

from __future__ import annotations

import os
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from gsco_common.errors import ConfigError, DataError, InputLimitError

MAX_PIXELS_ENV = "GSCO_MAX_IMAGE_PIXELS"
MAX_ARRAY_BYTES_ENV = "GSCO_MAX_ARRAY_BYTES"
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_ARRAY_BYTES = 4 * 2**30
# What numpy raises on a damaged .npz: not an archive, cut short, a member that does not inflate,
# a mangled array header (parsed as a Python literal)
CORRUPT_NPZ_ERRORS = (
    OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, SyntaxError, tokenize.TokenError,
)  # fmt: skip


def _limit(env: str, default: int) -> int:
    raw = os.environ.get(env)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{env} must be a positive whole number")
    return int(raw)


def max_pixels() -> int:
    """The largest image (width x height) any parser decodes; ``GSCO_MAX_IMAGE_PIXELS`` overrides."""
    return _limit(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS)


def max_array_bytes() -> int:
    """The most bytes one ``.npz`` array, or one collection's decoded images, may take in memory."""
    return _limit(MAX_ARRAY_BYTES_ENV, DEFAULT_MAX_ARRAY_BYTES)


class DecodedImagesBudget:
    """The decoded images of one collection, counted against :func:`max_array_bytes`.

    Readers that decode file by file (ImageFolder, CSV, DICOM) keep every image in memory; a
    folder far larger than memory would end in a ``MemoryError`` after hours of decoding. Each
    image passes :meth:`take`, and the one that crosses the limit stops the read with a one-line
    error. ``what`` names the collection in it (never a file path).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.limit = max_array_bytes()
        self.used = 0
        self.count = 0

    def take(self, image: np.ndarray) -> np.ndarray:
        self.used += image.nbytes
        self.count += 1
        if self.used > self.limit:
            raise InputLimitError(
                f"{self.what}: the decoded images pass {self.limit} bytes at image {self.count} "
                f"({MAX_ARRAY_BYTES_ENV})",
                hint=f"downsample the images or read a part of them; raise {MAX_ARRAY_BYTES_ENV} "
                "only if this machine has the memory",
            )
        return image


def open_image(path: Path) -> Image.Image:
    """``Image.open`` that refuses images beyond :func:`max_pixels` before decoding any pixel."""
    limit = max_pixels()
    try:
        img = Image.open(path)
    except Image.DecompressionBombError:
        raise InputLimitError(
            f"{path.name}: the image has more than {limit} pixels ({MAX_PIXELS_ENV})"
        ) from None
    width, height = img.size
    if width * height > limit:
        img.close()
        raise InputLimitError(
            f"{path.name}: {width}x{height} pixels is more than the limit of {limit} ({MAX_PIXELS_ENV})"
        )
    return img


def check_npz(path: Path) -> None:
    """Refuse an ``.npz`` whose arrays claim more bytes than the file holds or than the limit.

    Reads only the ``.npy`` headers: a forged header (shape ``(10**6, 10**6)`` over a few bytes)
    is found without allocating anything.
    """
    limit = max_array_bytes()
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    header_end = member.tell()
                if any(int(n) < 0 or int(n) > limit for n in shape):
                    raise InputLimitError(
                        f"{path.name}: array {info.filename[:-4]} declares the shape {shape} (forged header)"
                    )
                claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if claimed > limit:
                    raise InputLimitError(
                        f"{path.name}: array {info.filename[:-4]} claims {claimed} bytes, "
                        f"more than the limit of {limit} ({MAX_ARRAY_BYTES_ENV})"
                    )
                if not dtype.hasobject and claimed > info.file_size - header_end:
                    raise InputLimitError(
                        f"{path.name}: array {info.filename[:-4]} claims {claimed} bytes but holds "
                        f"{info.file_size - header_end} (forged header)"
                    )
    except CORRUPT_NPZ_ERRORS:
        return  # not a readable archive: the reader itself reports that in its own words


def label_indices(raw: np.ndarray, what: str) -> np.ndarray:
    """Labels as ``int64`` class indices; :class:`DataError` for a fraction (0.5 would be cut to 0).

    ``what`` names the array in the message.
    """
    flat = np.asarray(raw).reshape(-1)
    if flat.dtype.kind == "f" and not np.all(np.isfinite(flat) & (flat == np.round(flat))):
        raise DataError(
            f"{what} holds labels that are not whole numbers", hint="labels are class indices 0, 1, ..."
        )
    return flat.astype(np.int64)


IMAGE_CHANNELS = (1, 3, 4)
"""Channel counts an image can have (grayscale, RGB, RGBA), as every image reader takes them."""
STACK_SHAPES = "expected N x H x W (grayscale) or N x H x W x C with C 1, 3 (RGB) or 4 (RGBA)"


def check_image_stack(images: np.ndarray, what: str) -> None:
    """Refuse an array read from an ``.npz`` that is not ``N x H x W`` or ``N x H x W x C`` numbers.

    ``what`` names the array in the message (``"data.path: 'train_images'"``).
    """
    if images.ndim not in (3, 4):
        raise DataError(
            f"{what} has {images.ndim} dimensions",
            hint=STACK_SHAPES,
        )
    if images.ndim == 4 and images.shape[-1] not in IMAGE_CHANNELS:
        raise DataError(
            f"{what} has {images.shape[-1]} channels",
            hint=STACK_SHAPES,
        )
    if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise DataError(f"{what} holds {images.dtype} values, not pixel numbers")

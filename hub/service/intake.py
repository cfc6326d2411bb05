"""Uploaded images: size and pixel limits, PNG / JPEG / DICOM decoding, in memory only.

Every refusal is an :class:`ImageError` (422) or :class:`PayloadTooLargeError` (413) with a plain
message; nothing is written to disk. Of a DICOM upload only the UIDs an SR needs to reference
the source image are kept (:class:`DicomSource`), never a patient tag; the parsed dataset lives
only as long as the request (it becomes the SR's evidence when an SR is asked for).

DICOM pixels become the image the site's reader makes of the same file
(:func:`registry.bundle.dicom_pixels.dicom_to_unit`: modality LUT, VOI window, MONOCHROME1
inverted), so the model input is the one the specialist was trained and evaluated on.

Images with non-finite or constant pixels are refused (422) by
:func:`gsco_runtime.image_checks.refuse_degenerate`, as at every other entry to the runtime.

``max_pixels`` bounds what is allocated, not only what is decoded: when a specialist pads the
image to a square (card ``resize: pad``) the square is counted (a 1 x 60 000 PNG is a
60 000 x 60 000 model input before it is resized), against ``max_pixels`` or the runtime's
``GSCO_MAX_IMAGE_PIXELS``, whichever is lower; a DICOM in the deflated transfer syntax may
inflate to no more than ``max_bytes``, the limit an uncompressed upload is held to.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pydicom
import pydicom.config
from PIL import Image, UnidentifiedImageError
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.valuerep import VR

from gsco_common.errors import ImageError, PayloadTooLargeError
from gsco_runtime.image_checks import refuse_degenerate
from registry.bundle.dicom_deflate import inflates_past
from registry.bundle.dicom_pixels import (
    DICOM_DECODE_ERRORS,
    UnreadableImage,
    dicom_to_unit,
    frame_count,
    header_count,
)
from registry.bundle.preprocess import square_side
from registry.bundle.raster_pixels import RASTER_DECODE_ERRORS, pil_to_array
from registry.input_limits import max_pixels as runtime_max_pixels

RASTER_FORMATS = ("PNG", "JPEG")


@dataclass(frozen=True)
class Upload:
    """A decoded upload: pixels, the SHA-256 of the bytes, and the DICOM dataset when it was one."""

    pixels: np.ndarray
    sha256: str
    dicom: Dataset | None = None


def check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"the upload is larger than the limit of {max_bytes // (1024 * 1024)} MB",
            hint="send a smaller image",
        )
    if not data:
        raise ImageError("the upload is empty", hint="attach a PNG, JPEG or DICOM image")


def decode(data: bytes, *, max_bytes: int, max_pixels: int, pads: bool = True) -> Upload:
    """Decode an upload (PNG, JPEG or DICOM) under the limits; refuse anything else.

    ``pads``: a specialist that will see the image pads it to a square, so the square is counted
    against ``max_pixels`` (the default: the stricter count).
    """
    check_size(data, max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    if len(data) >= 132 and data[128:132] == b"DICM":
        dataset = _read_dicom(data, max_bytes)
        return Upload(refuse_degenerate(_dicom_pixels(dataset, max_pixels, pads)), digest, dataset)
    return Upload(refuse_degenerate(_raster_pixels(data, max_pixels, pads)), digest)


def _too_many(count: int, max_pixels: int) -> None:
    if count > max_pixels:
        raise ImageError(f"the image has more than {max_pixels} pixels", hint="downscale it before uploading")


def _too_wide(rows: int, columns: int, max_pixels: int, pads: bool) -> None:
    """The square a padding specialist makes of the image (before it is resized) is over the limit.

    The limit is also the runtime's own (``GSCO_MAX_IMAGE_PIXELS``), which its padding enforces
    again: a square between the two would otherwise pass here and fail there with another code.
    """
    side = square_side(rows, columns)
    limit = min(max_pixels, runtime_max_pixels())
    if pads and side * side > limit:
        raise ImageError(
            f"the image padded to a square for the model ({side}x{side}) has more than {limit} pixels",
            hint="crop it or downscale it before uploading",
        )


def _raster_pixels(data: bytes, max_pixels: int, pads: bool) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in RASTER_FORMATS:
                raise ImageError("the upload is not a PNG, JPEG or DICOM image")
            _too_many(img.width * img.height, max_pixels)
            _too_wide(img.height, img.width, max_pixels, pads)
            img.load()
            return pil_to_array(img)
    except UnidentifiedImageError:
        raise ImageError("the upload is not a PNG, JPEG or DICOM image") from None
    except Image.DecompressionBombError:
        raise ImageError(f"the image has more than {max_pixels} pixels") from None
    except RASTER_DECODE_ERRORS:
        raise ImageError("the image is truncated or damaged", hint="export it again") from None


CHARACTER_SET_WARNINGS = r"(Unknown encoding|Incorrect value for Specific Character Set) '"
"""pydicom's words for an unknown or misspelt SpecificCharacterSet, followed by the value."""


def _no_character_set_value(record: logging.LogRecord) -> bool:
    return re.match(CHARACTER_SET_WARNINGS, record.getMessage()) is None


def quiet_dicom_value_checks() -> None:
    """Keep pydicom from writing an upload's values into this process's (the hub's) log.

    pydicom warns and logs an invalid value *with the value* (``Invalid value for VR IS:
    'SMITH'``), which may be a patient's name or id. The intake refuses such a header in its own
    words, naming the attribute only, so reading validation is off. An unknown or misspelt
    SpecificCharacterSet is quoted whatever the validation mode, while ``dcmread`` reads the file
    and again for every text element decoded: those warnings are dropped (pydicom then decodes
    with the default or the corrected character set; an SR refuses the value by name).
    """
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    warnings.filterwarnings("ignore", message=CHARACTER_SET_WARNINGS, category=UserWarning)
    logging.getLogger("pydicom").addFilter(_no_character_set_value)


def _read_dicom(data: bytes, max_bytes: int) -> Dataset:
    try:
        _check_inflated_size(data, max_bytes)
        dataset = pydicom.dcmread(io.BytesIO(data))
    except DICOM_DECODE_ERRORS:
        raise ImageError("the DICOM file is truncated or damaged", hint="export it again") from None
    _parse_every_element(dataset)
    return dataset


def _check_inflated_size(data: bytes, max_bytes: int) -> None:
    """Refuse a deflated data set that inflates to more than ``max_bytes`` (413), before pydicom."""
    if inflates_past(io.BytesIO(data), max_bytes):
        raise PayloadTooLargeError(
            f"the deflated DICOM data set inflates to more than the upload limit of "
            f"{max_bytes // (1024 * 1024)} MB",
            hint="send the image uncompressed or in an image compression, not deflated",
        )


def _parse_every_element(dataset: Dataset) -> None:
    """Parse every element now, not on first access as pydicom does.

    A damaged element (an unknown value representation) found later, by the SR's builder, would
    be a 500.
    """
    for tag in list(dataset.keys()):
        try:
            element = dataset[tag]
        except DICOM_DECODE_ERRORS:
            raise ImageError(
                f"the DICOM attribute {_attribute(tag)} is damaged", hint="export it again"
            ) from None
        if element.VR == VR.SQ:
            for item in element.value:
                _parse_every_element(item)


def _attribute(tag: BaseTag) -> str:
    return f"{keyword_for_tag(tag)} {tag}".strip()


def _dicom_pixels(dataset: Dataset, max_pixels: int, pads: bool) -> np.ndarray:
    if not any(key in dataset for key in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise ImageError("the DICOM file has no pixel data", hint="send an image object, not a report")
    try:
        return _first_frame(dataset, max_pixels, pads)
    except UnreadableImage as exc:
        raise ImageError(f"the DICOM image cannot be read: {exc}") from None


def _first_frame(dataset: Dataset, max_pixels: int, pads: bool) -> np.ndarray:
    """The first frame through :func:`dicom_to_unit`; a malformed header is :class:`UnreadableImage`."""
    rows, columns = header_count(dataset, "Rows", 0), header_count(dataset, "Columns", 0)
    frames = frame_count(dataset)
    _too_many(rows * columns * frames, max_pixels)
    _too_wide(rows, columns, max_pixels, pads)
    try:
        array = dataset.pixel_array
    except DICOM_DECODE_ERRORS:
        raise ImageError("the DICOM pixel data is truncated or cannot be decoded") from None
    if frames > 1:
        array = array[0]
    samples = header_count(dataset, "SamplesPerPixel", 1)
    if samples == 1 and array.ndim != 2 or samples == 3 and array.shape[-1:] != (3,):
        raise ImageError("the DICOM image is neither grayscale nor RGB")
    return dicom_to_unit(array, dataset)

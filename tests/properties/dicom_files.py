"""Hostile DICOM files for the two DICOM decoders (the site's data reader and the hub's upload)."""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
    SecondaryCaptureImageStorage,
)

from tests.properties.hostile import mutated_bytes

BAD_NUMBERS = ["nan", "inf", "-inf", "0", "-5", "1e308", "1e-320", ""]
HOSTILE_HEADER: dict[str, list[Any]] = {
    "Rows": [0, 1, 3, 65535],
    "Columns": [0, 1, 3, 65535],
    "BitsAllocated": [0, 1, 7, 12, 32, 64],
    "BitsStored": [0, 1, 17, 33, 64],
    "HighBit": [0, 31, 99],
    "PixelRepresentation": [1, 2],
    "SamplesPerPixel": [0, 3, 4],
    "PlanarConfiguration": [1],
    "PhotometricInterpretation": ["RGB", "YBR_FULL", "PALETTE COLOR", "", "MONOCHROME1", "HSV"],
    "NumberOfFrames": ["0", "2", "-1", "99999", ""],
    "WindowCenter": [*BAD_NUMBERS, ["1", "2"]],
    "WindowWidth": [*BAD_NUMBERS, ["0", "1"]],
    "VOILUTFunction": ["SIGMOID", "LINEAR_EXACT", "CUBIC"],
    "RescaleSlope": BAD_NUMBERS,
    "RescaleIntercept": BAD_NUMBERS,
    "PixelData": [b"", b"\x00", b"\x01\x02" * 3, b"\xff" * 1000],
}
TRANSFER_SYNTAXES = [
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
]


def dicom_dataset() -> Dataset:
    """A valid 16-bit MONOCHROME2 8x8 image with a VOI window (and no patient data)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, "1.2.3.4"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = "2048", "4096"
    ds.PixelData = np.arange(64, dtype=np.uint16).tobytes()
    return ds


def dicom_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the hostile values are invalid on purpose
        ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def deflated_dicom(padding_bytes: int) -> bytes:
    """The valid file in the deflated transfer syntax with ``padding_bytes`` zeros in a private element.

    A few KB on disk whatever ``padding_bytes``: zeros deflate to almost nothing.
    """
    ds = dicom_dataset()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.add_new(0x00090010, "LO", "GSCO TEST")
    ds.add_new(0x00091000, "OB", bytes(padding_bytes))
    return dicom_bytes(ds)


@st.composite
def hostile_headers(draw: st.DrawFn) -> bytes:
    """The valid file with one to four header attributes (or the transfer syntax) set to hostile values."""
    ds = dicom_dataset()
    if draw(st.booleans()):
        ds.file_meta.TransferSyntaxUID = draw(st.sampled_from(TRANSFER_SYNTAXES))
        if ds.file_meta.TransferSyntaxUID.is_compressed:  # raw pixels posing as a compressed frame
            ds.PixelData = encapsulate([ds.PixelData])
    keywords = draw(st.lists(st.sampled_from(sorted(HOSTILE_HEADER)), min_size=1, max_size=4, unique=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for keyword in keywords:
            value = draw(st.sampled_from(HOSTILE_HEADER[keyword]))
            compressed = ds.file_meta.TransferSyntaxUID.is_compressed
            setattr(ds, keyword, encapsulate([value]) if keyword == "PixelData" and compressed else value)
    return dicom_bytes(ds)


HOSTILE_DICOM = mutated_bytes(dicom_bytes(dicom_dataset())) | hostile_headers()
"""Damaged files and valid files with hostile header values."""


def _raw(ds: Dataset, keyword: str, value: bytes) -> Dataset:
    """``ds`` with ``keyword`` holding ``value`` as written (pydicom refuses to set a non-number)."""
    tag = Tag(tag_for_keyword(keyword))
    padded = value + b" " * (len(value) % 2)
    ds[tag] = RawDataElement(tag, dictionary_VR(tag), len(padded), padded, 0, False, True)
    return ds


def _unknown_vr(keyword: str) -> bytes:
    """The valid file with the value representation of ``keyword`` flipped to one pydicom does not know."""
    data = dicom_bytes(dicom_dataset())
    tag = tag_for_keyword(keyword)
    element = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + dictionary_VR(tag).encode()
    return data.replace(element, element[:4] + b"XX")


def _without_window(**changes: Any) -> Dataset:
    ds = dicom_dataset()
    del ds.WindowCenter, ds.WindowWidth
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    return ds


def _lut_item(descriptor: list[int]) -> Dataset:
    item = Dataset()
    item.LUTDescriptor, item.ModalityLUTType, item.LUTData = descriptor, "HU", bytes(20)
    return item


MALFORMED_DICOM: dict[str, tuple[str, Callable[[], bytes]]] = {
    "empty window": (
        "WindowCenter",
        lambda: dicom_bytes(_raw(_raw(dicom_dataset(), "WindowCenter", b""), "WindowWidth", b"")),
    ),
    "text WindowCenter": (
        "WindowCenter",
        lambda: dicom_bytes(_raw(dicom_dataset(), "WindowCenter", b"SMITH")),
    ),
    "text RescaleSlope": (
        "RescaleSlope",
        lambda: dicom_bytes(_raw(_without_window(RescaleIntercept="0"), "RescaleSlope", b"SMITH")),
    ),
    "text NumberOfFrames": (
        "NumberOfFrames",
        lambda: dicom_bytes(_raw(dicom_dataset(), "NumberOfFrames", b"SMITH")),
    ),
    "empty Modality LUT Sequence": (
        "Modality LUT Sequence",
        lambda: dicom_bytes(_without_window(ModalityLUTSequence=Sequence([]))),
    ),
    "Modality LUT without descriptor": (
        "Modality LUT Sequence",
        lambda: dicom_bytes(_without_window(ModalityLUTSequence=Sequence([Dataset()]))),
    ),
    "Modality LUT with a short descriptor": (
        "Modality LUT Sequence",
        lambda: dicom_bytes(_without_window(ModalityLUTSequence=Sequence([_lut_item([4096, 0])]))),
    ),
    "unknown VR in WindowWidth": ("WindowWidth", lambda: _unknown_vr("WindowWidth")),
    "unknown VR in SOPInstanceUID": ("SOPInstanceUID", lambda: _unknown_vr("SOPInstanceUID")),
}
"""Files a red-team pass found to escape as a 500 at the hub: name -> (what the refusal names, the file).

Text values are ``SMITH``: a refusal must name the attribute, never its value.
"""

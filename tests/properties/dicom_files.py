"""Hostile DICOM files for the two DICOM decoders (the site's data reader and the hub's upload)."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
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

"""One writer of test DICOM files: pixel encodings for the reader, planted identifiers for the PHI scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits: int = 8,
    slope: float | None = None,
    intercept: float | None = None,
    center: float | list[float] | None = None,
    width: float | list[float] | None = None,
    patient_id: str = "PID-0001",
    patient_name: str = "Doe^Jane",
    accession: str | None = None,
    institution: str = "St Example Hospital",
    physician: str = "Smith^Anna",
    sop_uid: str | None = None,
    charset: str | None = None,
) -> Path:
    """A single-frame grayscale DICOM file with the given pixel encoding and header; fresh study/series UIDs.

    The accession number defaults to ``ACC`` and the last four characters of ``patient_id``.
    """
    uid = sop_uid or generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = uid
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    if charset is not None:  # e.g. "ISO_IR 192" (UTF-8), for names with non-ASCII letters
        ds.SpecificCharacterSet = charset
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.AccessionNumber = accession or f"ACC{patient_id[-4:]}"
    ds.InstitutionName = institution
    ds.ReferringPhysicianName = physician
    ds.Modality = "CR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept or 0.0
    if center is not None:
        ds.WindowCenter = center
        ds.WindowWidth = width
    ds.PixelData = pixels.astype(np.uint8 if bits == 8 else np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path

"""What a DICOM SR answer needs from the uploaded DICOM, checked before anything is diagnosed.

An SR filed next to an image takes its patient and study from that image: highdicom reads them
(and the image's SOP class and instance) from the source and fails on a missing or malformed
one. The diagnose route checks the source first, so such an upload is a 422 and no decision is
stored or audited that the client never got. Messages name the attribute, never its value (a
DICOM value may identify a patient).
"""

from __future__ import annotations

from highdicom.enum import PatientSexValues, SpecificCharacterSetValues
from pydicom import config
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pydicom.valuerep import validate_value

from gsco_common.errors import ImageError

# Read by hd.sr.Comprehensive3DSR (from its evidence) and SourceImageForMeasurementGroup.
REQUIRED = (
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
)
CHARACTER_SETS = {v.value for v in SpecificCharacterSetValues}
SEXES = {v.value for v in PatientSexValues} | {""}
HINT = "ask for the JSON or FHIR answer, or send the image as the PACS stores it"


def _refuse(keyword: str, problem: str) -> ImageError:
    return ImageError(f"a DICOM SR answer needs the DICOM file's {keyword}, which {problem}", hint=HINT)


def check_sr_source(dataset: Dataset) -> None:
    """Refuse (422) a source DICOM that a DICOM SR cannot reference or take patient and study from."""
    for keyword in REQUIRED:
        if keyword not in dataset:
            raise _refuse(keyword, "is missing")
        element = dataset[keyword]
        try:
            validate_value(element.VR, element.value, config.RAISE)
        except ValueError:
            raise _refuse(keyword, f"is not a valid {element.VR} value") from None
        if element.VM > 1:
            raise _refuse(keyword, "has more than one value")
    if UID(dataset.SOPClassUID or "").type != "SOP Class":
        raise _refuse("SOPClassUID", "is not a known SOP class")
    if dataset.PatientSex not in SEXES:
        raise _refuse("PatientSex", "is not M, F, O or empty")
    charsets = dataset.get("SpecificCharacterSet")
    if not set([charsets] if isinstance(charsets, str) else charsets or []) <= CHARACTER_SETS:
        raise _refuse("SpecificCharacterSet", "is not a character set DICOM defines")

"""What a DICOM SR answer needs from the uploaded DICOM, checked before anything is diagnosed.

An SR filed next to an image takes its patient and study from that image: highdicom reads them
(and the image's SOP class and instance) from the source and fails on a missing or malformed
one. The diagnose route checks the source first, so such an upload is a 422 and no decision is
stored or audited that the client never got. Messages name the attribute, never its value (a
DICOM value may identify a patient).

Each attribute is checked the way highdicom uses it, which is narrower than what pydicom's value
check takes: a date or time is parsed as one value (``DA`` / ``TM``, no range such as
``19761231-19770101``), the character sets must be a combination highdicom writes
(``_check_specific_character_set``), the SOP class one whose IOD highdicom knows (it looks the
modules to copy up by it), and the UIDs an SR references must not be empty. The other Patient and
Study attributes highdicom copies are copied as they are, never parsed, so they need no check.
"""

from __future__ import annotations

from highdicom._standard_utils import get_sop_class_iod_map
from highdicom.enum import PatientSexValues, SpecificCharacterSetValues
from pydicom import config
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pydicom.valuerep import DA, TM, validate_value

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
UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
DATES = ("PatientBirthDate", "StudyDate")  # highdicom: DA(value), a single date
TIMES = ("StudyTime",)  # highdicom: TM(value), a single time
CHARACTER_SETS = {v.value for v in SpecificCharacterSetValues}
# highdicom.valuerep._check_specific_character_set: several character sets only with code
# extensions (ISO 2022), a multi-byte one never first; one character set only without them.
# highdicom counts ISO 2022 IR 58 (simplified Chinese) as no code extension.
_SETS = SpecificCharacterSetValues
MULTI_BYTE_EXTENSIONS = {
    v.value
    for v in (
        _SETS.JAPANESE_KANJI_CODE_EXTENSIONS,
        _SETS.JAPANESE_KANJI_SUPPLEMENTARY_CODE_EXTENSIONS,
        _SETS.KOREAN_CODE_EXTENSIONS,  # in highdicom 0.28 another name of the one above
    )
}
CODE_EXTENSIONS = {
    v.value
    for v in _SETS
    if v.name.endswith("_CODE_EXTENSIONS") and v is not _SETS.SIMPLIFIED_CHINESE_CODE_EXTENSIONS
}
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
    for keyword in UIDS:
        if not dataset[keyword].value:
            raise _refuse(keyword, "is empty")
    for keyword in DATES:
        if not _parses_as(DA, str(dataset[keyword].value or "")):
            raise _refuse(keyword, "is not one date (YYYYMMDD; not a range) or empty")
    for keyword in TIMES:
        if not _parses_as(TM, str(dataset[keyword].value or "")):
            raise _refuse(keyword, "is not one time (HHMMSS.FFFFFF or shorter; not a range) or empty")
    if UID(dataset.SOPClassUID).type != "SOP Class":
        raise _refuse("SOPClassUID", "is not a known SOP class")
    if dataset.SOPClassUID not in get_sop_class_iod_map():
        raise _refuse(
            "SOPClassUID", "is not a SOP class whose objects the SR can take patient and study from"
        )
    if dataset.PatientSex not in SEXES:
        raise _refuse("PatientSex", "is not M, F, O or empty")
    if "SpecificCharacterSet" in dataset:
        _check_character_sets(dataset["SpecificCharacterSet"].value)


def _parses_as(kind: type[DA] | type[TM], value: str) -> bool:
    """Whether highdicom's parse of a ``DA`` / ``TM`` value (pydicom's, one value) takes ``value``."""
    if not value:
        return True  # type 2: empty when unknown
    try:
        kind(value)
    except ValueError:  # a range (19761231-19770101), no such day (19760231)
        return False
    return True


def _check_character_sets(value: object) -> None:
    """Refuse the SpecificCharacterSet values highdicom cannot write into the SR (by name only)."""
    charsets = [value] if isinstance(value, str) else list(value or [""])  # type: ignore[call-overload]
    if not set(charsets) <= CHARACTER_SETS:
        raise _refuse("SpecificCharacterSet", "is not a character set DICOM defines")
    if len(charsets) == 1 and charsets[0] in CODE_EXTENSIONS:
        raise _refuse("SpecificCharacterSet", "is a single character set with code extensions (ISO 2022)")
    if len(charsets) > 1 and not set(charsets) <= CODE_EXTENSIONS:
        raise _refuse(
            "SpecificCharacterSet", "has several character sets, not all with code extensions (ISO 2022)"
        )
    if len(charsets) > 1 and charsets[0] in MULTI_BYTE_EXTENSIONS:
        raise _refuse("SpecificCharacterSet", "has several character sets, a multi-byte one first")

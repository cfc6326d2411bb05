"""The DICOM SR builder on its own: what it takes from its source, what it writes to the log."""

from __future__ import annotations

import io
import itertools
import logging
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from highdicom.enum import SpecificCharacterSetValues
from highdicom.valuerep import _check_specific_character_set
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from gsco_common.errors import ImageError
from hub.service.dicom_sr import build_sr
from hub.service.intake import decode
from hub.service.sr_source import _check_character_sets, check_sr_source
from tests.site_agent.dicom_files import write_dicom

DECISION = {
    "arbiter": "consensus",
    "confidence": 0.9,
    "label": "effusion",
    "specialists": [
        {
            "model_name": "cxr-a",
            "version": "1",
            "digest": "0" * 64,
            "site_fingerprint": "ab" * 8,
            "approved_by": "central",
            "approved_at": "2026-01-01T00:00:00Z",
            "label": "effusion",
        }
    ],
}


def test_a_person_name_without_a_caret_is_not_written_to_the_log(tmp_path: Path) -> None:
    """highdicom warns about such a name quoting it: the hub's stderr (its log) must not get it."""
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    path = write_dicom(tmp_path / "x.dcm", pixels, patient_name="JOHN SMITH", physician="ANNA JONES")
    source = pydicom.dcmread(path)
    source.PatientBirthDate, source.PatientSex, source.StudyID = "", "", "1"  # the SR copies them
    source.StudyDate, source.StudyTime = "20260101", "120000"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sr = pydicom.dcmread(io.BytesIO(build_sr(DECISION, source)))
    assert str(sr.PatientName) == "JOHN SMITH"  # the SR still files next to its image
    texts = [str(warning.message) for warning in caught]
    assert not [text for text in texts if "JOHN" in text or "JONES" in text], texts


def _upload(tmp_path: Path, **raw: tuple[str, bytes]) -> Dataset:
    """A DICOM upload as the hub's intake reads it, with the given keywords set to raw (VR, bytes) values.

    Raw values reach the header as a file would carry them (no pydicom validation on the way).
    """
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    source = pydicom.dcmread(write_dicom(tmp_path / "x.dcm", pixels, patient_name="Doe^Planted"))
    source.PatientBirthDate, source.PatientSex, source.StudyID = "19700101", "O", "1"
    source.StudyDate, source.StudyTime = "20260101", "120000"
    for keyword, (vr, value) in raw.items():
        tag = Tag(tag_for_keyword(keyword))
        source[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)
    buffer = io.BytesIO()
    source.save_as(buffer, enforce_file_format=True)
    upload = decode(buffer.getvalue(), max_bytes=1 << 20, max_pixels=1 << 20)
    assert upload.dicom is not None
    return upload.dicom


# What highdicom cannot copy into an SR although pydicom's value check accepts it: a 500 before.
UNUSABLE = [
    ("PatientBirthDate", "DA", b"19761231-19770101"),
    ("PatientBirthDate", "DA", b"19761231-"),
    ("PatientBirthDate", "DA", b"-19761231"),
    ("PatientBirthDate", "DA", b"19760231"),  # no such day
    ("StudyDate", "DA", b"20200101-20210101"),
    ("StudyTime", "TM", b"101010-111111"),
    ("StudyTime", "TM", b"101010-"),
    ("SpecificCharacterSet", "CS", b"ISO_IR 100\\ISO_IR 192"),  # several, without code extensions
    ("SpecificCharacterSet", "CS", b"ISO_IR 100\\ISO_IR 100"),
    ("SpecificCharacterSet", "CS", b"ISO 2022 IR 100"),  # code extensions, alone
    ("SpecificCharacterSet", "CS", b"ISO 2022 IR 87\\ISO 2022 IR 6"),  # a multi-byte one first
    ("SpecificCharacterSet", "CS", b"\\ISO 2022 IR 87"),  # the default repertoire as an empty first value
    ("SOPClassUID", "UI", b"1.2.840.10008.5.1.4.1.1.6\0"),  # retired, unknown to highdicom
    ("SOPClassUID", "UI", b"1.2.840.10008.1.1\0"),  # Verification: a SOP class, not a stored object
    ("SOPInstanceUID", "UI", b""),
    ("StudyInstanceUID", "UI", b""),
    ("SeriesInstanceUID", "UI", b""),
]


@pytest.mark.parametrize(("keyword", "vr", "value"), UNUSABLE)
def test_an_sr_source_value_highdicom_cannot_take_is_refused_by_name(
    tmp_path: Path, keyword: str, vr: str, value: bytes
) -> None:
    """A 422 naming the attribute, never its value, instead of highdicom's ValueError (a 500 quoting it)."""
    source = _upload(tmp_path, **{keyword: (vr, value)})
    with pytest.raises(ImageError) as refused:
        check_sr_source(source)
    message = str(refused.value)
    assert keyword in message
    for part in value.strip(b"\0").split(b"\\"):
        if part:
            assert part.decode() not in message


# Values the check lets through must build (an SR for each), so the check refuses no more than it must.
USABLE = [
    {},
    {"PatientBirthDate": ("DA", b"")},
    {"StudyDate": ("DA", b""), "StudyTime": ("TM", b"")},
    {"StudyTime": ("TM", b"101010.123456")},
    {"StudyTime": ("TM", b"10")},
    {"StudyTime": ("TM", b"235960")},  # a leap second
    {"SpecificCharacterSet": ("CS", b"ISO_IR 100")},
    {"SpecificCharacterSet": ("CS", b"ISO_IR 192")},
    {"SpecificCharacterSet": ("CS", b"GB18030")},
    {"SpecificCharacterSet": ("CS", b"ISO 2022 IR 6\\ISO 2022 IR 87")},
    {"SpecificCharacterSet": ("CS", b"ISO 2022 IR 100\\ISO 2022 IR 126")},
    {"SOPClassUID": ("UI", b"1.2.840.10008.5.1.4.1.1.2\0")},  # CT Image Storage
]


@pytest.mark.parametrize("raw", USABLE)
def test_an_sr_source_the_check_accepts_builds(tmp_path: Path, raw: dict[str, tuple[str, bytes]]) -> None:
    source = _upload(tmp_path, **raw)
    check_sr_source(source)
    sr = pydicom.dcmread(io.BytesIO(build_sr(DECISION, source)))
    assert sr.StudyInstanceUID == source.StudyInstanceUID


def test_the_character_set_check_refuses_exactly_what_highdicom_refuses() -> None:
    """Every character set DICOM defines, alone and in pairs, against highdicom's own check."""
    names = [v.value for v in SpecificCharacterSetValues]
    for value in [*names, *itertools.product(names, repeat=2)]:
        try:
            _check_specific_character_set(value)
            highdicom_takes = True
        except ValueError:
            highdicom_takes = False
        try:
            _check_character_sets(value if isinstance(value, str) else list(value))
            hub_takes = True
        except ImageError as refused:
            assert "SpecificCharacterSet" in str(refused) and " IR " not in str(refused)
            hub_takes = False
        assert hub_takes == highdicom_takes, value


def test_building_an_sr_logs_no_instance_uid(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """highdicom logs the source's SOPInstanceUID at INFO; the hub keeps highdicom at WARNING."""
    planted = f"1.2.826.0.1.3680043.8.498.{time.time_ns()}"
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    source = pydicom.dcmread(
        write_dicom(tmp_path / "x.dcm", pixels, patient_name="Doe^Jane", sop_uid=planted)
    )
    source.PatientBirthDate, source.PatientSex, source.StudyID = "", "", "1"
    source.StudyDate, source.StudyTime = "20260101", "120000"
    caplog.set_level(logging.DEBUG)
    sr = pydicom.dcmread(io.BytesIO(build_sr(DECISION, source)))
    assert planted in str(sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0])
    assert not [record for record in caplog.records if planted in record.getMessage()]


IMPORT_AND_BUILD = """
import io, logging, sys
import numpy as np, pydicom
root = logging.getLogger()
before = (root.level, list(root.handlers))
import hub.service.app
from hub.service.fhir import r4_models
r4_models()  # what the app's lifespan imports in the background
after = (root.level, list(root.handlers))
assert after == before, (before, after)
from hub.service.dicom_sr import build_sr
from tests.hub.service.test_dicom_sr import DECISION
from tests.site_agent.dicom_files import write_dicom
from pathlib import Path
pixels = np.arange(64, dtype=np.uint8).reshape(8, 8)
source = pydicom.dcmread(write_dicom(Path(sys.argv[1]), pixels, sop_uid=sys.argv[2]))
source.PatientBirthDate, source.PatientSex, source.StudyID = "", "", "1"
source.StudyDate, source.StudyTime = "20260101", "120000"
build_sr(DECISION, source)
print("built")
"""


def test_the_fhir_models_leave_the_hubs_log_levels_alone(tmp_path: Path) -> None:
    """fhircraft's import calls logging.basicConfig(level=INFO): highdicom then logged each upload's UID.

    In a fresh process (the models are imported once per process): the root logger's level and
    handlers are those from before, and an SR built afterwards writes no UID of its source.
    """
    planted = f"1.2.826.0.1.3680043.8.498.{time.time_ns()}"
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_AND_BUILD, str(tmp_path / "x.dcm"), planted],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0 and "built" in done.stdout, done.stderr[-3000:]
    assert planted not in done.stdout + done.stderr

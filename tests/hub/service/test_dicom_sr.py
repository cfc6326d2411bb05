"""The DICOM SR builder on its own: what it writes to the log."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pydicom

from hub.service.dicom_sr import build_sr
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

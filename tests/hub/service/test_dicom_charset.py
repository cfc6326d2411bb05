"""An upload's SpecificCharacterSet never reaches the hub's log through pydicom's warnings.

pydicom warns ``Unknown encoding '<value>'`` (on its logger and through :mod:`warnings`) while
``dcmread`` reads such a file and for every text element it decodes, whatever the validation
mode: an unvalidated value of the upload in the hub's log (found by a red-team pass). The hub
drops exactly those warnings; the image is still diagnosed, as with any other header text.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator

import pydicom.config
import pytest

from hub.service.intake import decode, quiet_dicom_value_checks
from tests.properties.dicom_files import _raw, dicom_bytes, dicom_dataset

PLANTED = b"ZZSMITH QQJOHN"


def _upload(charset: bytes) -> bytes:
    ds = _raw(dicom_dataset(), "SpecificCharacterSet", charset)
    ds.PatientName = "Doe^Jane"  # a text element pydicom decodes with it
    return dicom_bytes(ds)


def _what_decoding_says(data: bytes, caplog: pytest.LogCaptureFixture, *, quiet: bool) -> list[str]:
    """Every warning and log record of decoding ``data`` (every time, not once per place)."""
    caplog.clear()  # what writing the file said is not the intake's
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if quiet:
            quiet_dicom_value_checks()  # as the hub's app does at start, after any other filter
        upload = decode(data, max_bytes=1 << 20, max_pixels=1 << 20)
    assert upload.dicom is not None and str(upload.dicom.PatientName) == "Doe^Jane"
    return [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]


@pytest.fixture(autouse=True)
def pydicom_as_before() -> Iterator[None]:
    """pydicom's logger without filters for the test, and its filters and mode as they were after it.

    A hub started earlier in this process has set them (the hub fixture's tests rely on that).
    """
    logger, mode = logging.getLogger("pydicom"), pydicom.config.settings.reading_validation_mode
    saved = list(logger.filters)
    logger.filters.clear()
    yield
    logger.filters[:] = saved
    pydicom.config.settings.reading_validation_mode = mode


@pytest.mark.parametrize("charset", [PLANTED, b"ZZSMITH-IR 100", b"ISO-IR 100", b"ISO_2022_IR 6\\ZZSMITH"])
def test_a_character_set_value_is_never_quoted_in_the_log(
    charset: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    planted = [part.decode() for part in charset.split(b"\\")]
    unquiet = _what_decoding_says(_upload(charset), caplog, quiet=False)
    assert [line for line in unquiet if any(f"'{part}'" in line for part in planted)], "pydicom quotes it"
    quiet = _what_decoding_says(_upload(charset), caplog, quiet=True)
    assert not [line for line in quiet if any(part in line for part in planted)]


def test_other_pydicom_warnings_still_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.clear()
    quiet_dicom_value_checks()
    with caplog.at_level(logging.WARNING):
        logging.getLogger("pydicom").warning("The value length (3) exceeds the maximum length")
    assert [r.getMessage() for r in caplog.records] == ["The value length (3) exceeds the maximum length"]

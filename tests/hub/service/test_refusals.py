"""Hostile or malformed requests get a 4xx in the error format, nothing stored, and no blocked loop."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from collections.abc import Iterator

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from sqlalchemy import func, select

from hub.service import routes_clinical, webhook
from hub.service.database import DecisionRow
from hub.service.form import DiagnosisForm, parse_form
from tests.hub.service.conftest import WEBHOOK_SECRET, Hub, metric, query_image
from tests.hub.service.test_api import _diagnose, _dicom, _error

TINY_PART = b'--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n'


def _decisions(hub: Hub) -> int:
    with hub.app.state.hub.db.session() as session:  # type: ignore[attr-defined]
        return session.scalar(select(func.count()).select_from(DecisionRow))


def _audit_size(hub: Hub) -> int:
    with hub.client(hub.admin) as client:
        return len(client.get("/v1/audit", params={"limit": 10_000}).json()["entries"])


def test_a_form_of_many_tiny_parts_is_refused_at_its_fifth_part(hub: Hub) -> None:
    body = TINY_PART * (1024 * 1024 // len(TINY_PART)) + b"--XX--\r\n"  # under the 1 MB upload cap
    with hub.client(hub.clinician) as client:
        response = client.post(
            "/v1/diagnoses", content=body, headers={"Content-Type": "multipart/form-data; boundary=XX"}
        )
    _error(response, 422, "GSCO-800")
    assert "the form has more than 4 parts" in response.json()["error"]["message"]


def test_the_form_is_parsed_off_the_event_loop(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[tuple[str, bool]] = []

    def recording(content_type: str, body: bytes) -> DiagnosisForm:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        threads.append((threading.current_thread().name, on_loop))
        return parse_form(content_type, body)

    monkeypatch.setattr(routes_clinical, "parse_form", recording)
    assert _diagnose(hub, query_image(21)).status_code == 200
    assert len(threads) == 1 and threads[0][1] is False, threads  # a worker thread, no event loop in it


@pytest.mark.parametrize("k", ["²", "0" * 5000, "٣"])
def test_k_must_be_ascii_digits(hub: Hub, k: str) -> None:
    response = _diagnose(hub, query_image(22), k=k)
    _error(response, 422, "GSCO-800")
    assert "'k'" in response.json()["error"]["message"]


@pytest.mark.parametrize("stamp", [b"9" * 5000, b"\xb2"])
def test_webhook_timestamp_that_int_refuses_is_401(hub: Hub, stamp: bytes) -> None:
    body = b"{}"
    signature = webhook.signature(WEBHOOK_SECRET, "d-2", stamp.decode("latin-1"), body)
    headers = {"X-MLflow-Delivery-Id": b"d-2", "X-MLflow-Timestamp": stamp, "X-MLflow-Signature": signature}
    with hub.client() as client:
        _error(client.post("/v1/admin/webhook", content=body, headers=headers), 401, "GSCO-520")


def test_review_refuses_bad_utf8_and_a_confirmation_with_another_label(hub: Hub) -> None:
    decision = _diagnose(hub, query_image(23)).json()
    url = f"/v1/diagnoses/{decision['id']}/review"
    with hub.client(hub.clinician) as client:
        bad_utf8 = b'{"action":"confirm","comment":"\xff\xfe"}'
        json_type = {"Content-Type": "application/json"}
        _error(client.post(url, content=bad_utf8, headers=json_type), 422, "GSCO-800")
        bogus = client.post(url, json={"action": "confirm", "label": "bogus"})
        _error(bogus, 422, "GSCO-800")
        assert "confirmation" in bogus.json()["error"]["message"]
        # the web page sends the AI's label with a confirmation
        confirmed = client.post(url, json={"action": "confirm", "label": decision["label"]})
        assert confirmed.status_code == 200 and confirmed.json()["review"]["label"] == decision["label"]


def _without(keyword: str) -> bytes:
    source = pydicom.dcmread(io.BytesIO(_dicom(np.random.default_rng(24).integers(0, 256, (28, 28)))))
    delattr(source, keyword)
    buffer = io.BytesIO()
    source.save_as(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("keyword", ["StudyInstanceUID", "SOPClassUID"])
def test_an_sr_the_source_cannot_give_is_422_before_anything_is_stored(hub: Hub, keyword: str) -> None:
    decisions, audited = _decisions(hub), _audit_size(hub)
    response = _diagnose(hub, _without(keyword), format="dicom-sr")
    _error(response, 422, "GSCO-822")
    message = response.json()["error"]["message"]
    assert keyword in message and "PLANTED" not in message and "Planted" not in message
    assert _decisions(hub) == decisions and _audit_size(hub) == audited
    assert _diagnose(hub, _without(keyword)).status_code == 200  # the JSON answer needs neither


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """The hub's log and uvicorn's (which does not propagate to the root logger)."""
    text = io.StringIO()
    handler = logging.StreamHandler(text)
    loggers = [logging.getLogger(), logging.getLogger("uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    yield text
    for logger in loggers:
        logger.removeHandler(handler)


def test_an_unhandled_error_is_a_counted_500_logged_once(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, captured_logs: io.StringIO
) -> None:
    marker = f"planted-failure-{time.time_ns()}"

    def boom() -> None:
        raise RuntimeError(marker)

    monkeypatch.setattr(hub.app.state.hub.runtime, "tasks", boom)  # type: ignore[attr-defined]
    with hub.client(hub.clinician) as client:
        before = client.get("/metrics").text
        response = client.get("/v1/tasks")
        after = client.get("/metrics").text
    _error(response, 500, "GSCO-000")
    assert marker not in response.text
    requests = 'gsco_hub_requests_total{route="/v1/tasks",status="500"}'
    for key in (requests, 'gsco_hub_errors_total{code="GSCO-000"}'):
        assert metric(after, key) - metric(before, key) == 1, key
    assert captured_logs.getvalue().count(f"RuntimeError: {marker}") == 1


def _with_birth_date_range() -> bytes:
    source = pydicom.dcmread(io.BytesIO(_dicom(np.random.default_rng(25).integers(0, 256, (28, 28)))))
    tag = Tag(0x00100030)
    source[tag] = RawDataElement(tag, "DA", 18, b"19761231-19770101 ", 0, False, True)
    buffer = io.BytesIO()
    source.save_as(buffer)
    return buffer.getvalue()


def test_an_sr_source_with_a_birth_date_range_is_422_naming_the_attribute(
    hub: Hub, captured_logs: io.StringIO
) -> None:
    """pydicom's value check takes a DA range, highdicom does not: a 500 quoting it in the log before."""
    decisions = _decisions(hub)
    response = _diagnose(hub, _with_birth_date_range(), format="dicom-sr")
    _error(response, 422, "GSCO-822")
    assert "PatientBirthDate" in response.json()["error"]["message"]
    assert "1976" not in response.text and "1976" not in captured_logs.getvalue()
    assert _decisions(hub) == decisions


def test_an_unhandled_error_on_an_upload_is_logged_without_its_message(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, captured_logs: io.StringIO
) -> None:
    """Libraries quote values in their exceptions; of an upload those may be a patient's."""
    marker = f"Planted^Patient-{time.time_ns()}"

    def boom(decision: dict, source: object) -> bytes:
        raise ValueError(f"Unable to convert {marker!r}") from KeyError(marker)

    monkeypatch.setattr(routes_clinical, "build_sr", boom)
    response = _diagnose(hub, _dicom(np.random.default_rng(26).integers(0, 256, (28, 28))), format="dicom-sr")
    _error(response, 500, "GSCO-000")
    logged = captured_logs.getvalue()
    assert marker not in logged and marker not in response.text
    # what a maintainer needs is still there: the route, the exceptions' types and where they were raised
    assert "/v1/diagnoses" in logged and "ValueError" in logged and "KeyError" in logged
    assert logged.count("in boom") == 1, logged


@pytest.mark.parametrize(
    ("comment", "identifier"),
    [
        ("pt ZZSMITH^QQJOHN", "ZZSMITH"),
        ("MRN: 12345678", "12345678"),
        ("born 01.02.1970, seen again", "1970"),
        ("Tel. 030 4505 1234", "4505"),
        ("Dr. Quackenbush agrees", "Quackenbush"),
    ],
)
def test_an_identifying_review_comment_is_refused_and_nothing_is_stored(
    hub: Hub, comment: str, identifier: str
) -> None:
    decision = _diagnose(hub, query_image(25)).json()
    url = f"/v1/diagnoses/{decision['id']}/review"
    audited = _audit_size(hub)
    with hub.client(hub.clinician) as client:
        refused = client.post(url, json={"action": "confirm", "comment": comment})
        _error(refused, 422, "GSCO-800")
        assert "comment looks identifying" in refused.json()["error"]["message"]
        assert identifier not in refused.text
        assert client.get(f"/v1/diagnoses/{decision['id']}").json()["reviews"] == []
        assert _audit_size(hub) == audited
        kept = client.post(
            url, json={"action": "confirm", "comment": "subtle right lower lobe opacity; agree"}
        )
    assert (
        kept.status_code == 200
        and kept.json()["review"]["comment"] == "subtle right lower lobe opacity; agree"
    )

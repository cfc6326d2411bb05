"""The hub service end to end over HTTP: auth, diagnoses, outputs, reviews, audit, limits, health."""

from __future__ import annotations

import asyncio
import io
import json
import time

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from hub.service import routes_clinical, webhook
from hub.service.fhir import r4_models, validate_r4
from tests.gsco_runtime.world import LABELS
from tests.hub.service.conftest import WEBHOOK_SECRET, Hub, metric, png, query_image
from tests.properties.dicom_files import MALFORMED_DICOM
from tests.site_bundle import publish_real


def _diagnose(hub: Hub, data: bytes, token: str | None = None, **extra: str):
    fields = {"task_id": hub.task, **extra}
    with hub.client(token or hub.clinician) as client:
        return client.post(
            "/v1/diagnoses",
            data=fields,
            files={"image": ("x.bin", data)},
            params={k: v for k, v in extra.items() if k == "format"},
        )


def _dicom(pixels: np.ndarray | None, name: str = "Doe^Planted", pid: str = "PLANTED-123") -> bytes:
    """A Secondary Capture image with planted patient data; without ``pixels``, one with no pixel data."""
    image = hd.sc.SCImage(
        pixel_array=np.zeros((28, 28), np.uint8) if pixels is None else pixels.astype(np.uint8),
        photometric_interpretation="MONOCHROME2",
        bits_allocated=8,
        coordinate_system="PATIENT",
        patient_orientation=("L", "F"),
        study_instance_uid=hd.UID(),
        series_instance_uid=hd.UID(),
        series_number=1,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="GSCo tests",
        patient_id=pid,
        patient_name=name,
        patient_birth_date="19700101",
        patient_sex="O",
        accession_number="A1",
        study_id="1",
        study_date="20260101",
        study_time="120000",
    )
    if pixels is None:
        del image.PixelData
    buffer = io.BytesIO()
    image.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _float_dicom(pixels: np.ndarray) -> bytes:
    """A float-pixel DICOM (Float Pixel Data, as in parametric maps): the one upload that can carry NaN."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.30"  # Parametric Map Storage
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 32
    ds.FloatPixelData = pixels.astype(np.float32).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]


def test_health_and_readiness(hub: Hub) -> None:
    with hub.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert ready.json()["tasks"][hub.task] == 2
        for ui in ("/docs", "/redoc"):  # their scripts would come from a public CDN
            assert client.get(ui).json()["error"]["code"] == "GSCO-804"
        assert "/v1/diagnoses" in client.get("/openapi.json").json()["paths"]
        assert client.get("/").status_code == 200


def test_auth_401_403_and_error_shape(hub: Hub) -> None:
    with hub.client() as client:
        _error(client.get("/v1/tasks"), 401, "GSCO-520")
    with hub.client("gsco_not-a-token") as client:
        _error(client.get("/v1/tasks"), 401, "GSCO-520")
    with hub.client(hub.revoked) as client:
        _error(client.get("/v1/tasks"), 401, "GSCO-520")
    with hub.client(hub.clinician) as client:
        _error(client.get("/v1/audit"), 403, "GSCO-525")
        _error(client.post("/v1/admin/refresh"), 403, "GSCO-525")
        _error(client.get("/v1/nope"), 404, "GSCO-804")
        wrong_method = client.delete("/v1/tasks")
        _error(wrong_method, 405, "GSCO-800")
        assert wrong_method.json()["error"]["message"] == "DELETE is not allowed on /v1/tasks; it takes GET"
        assert wrong_method.headers["allow"] == "GET"
        post_only = client.get("/v1/diagnoses")  # would reach the page's mount, which has no such file
        _error(post_only, 405, "GSCO-800")
        assert post_only.json()["error"]["message"] == "GET is not allowed on /v1/diagnoses; it takes POST"
        assert post_only.headers["allow"] == "POST"
        page = client.post("/")  # the static page's mount, not an API route
        _error(page, 405, "GSCO-800")
        assert page.json()["error"]["message"] == "POST is not allowed on /; it takes GET, HEAD"
    with hub.client(hub.admin) as client:
        assert client.get("/v1/tasks").status_code == 200


def test_no_answer_may_be_framed_and_no_api_answer_cached(hub: Hub) -> None:
    with hub.client(hub.clinician) as client:
        answers = {
            "page": client.get("/"),
            "api": client.get("/v1/tasks"),
            "api error": client.get("/v1/nope"),
            "health": client.get("/healthz"),
        }
    for name, answer in answers.items():
        assert answer.headers["x-frame-options"] == "DENY", name
        assert answer.headers["content-security-policy"] == "frame-ancestors 'none'", name
        assert answer.headers["x-content-type-options"] == "nosniff", name
        assert answer.headers["referrer-policy"] == "no-referrer", name
    assert [answers[name].headers.get("cache-control") for name in answers] == [
        None,
        "no-store",
        "no-store",
        None,
    ]


def test_tasks_list_models_with_provenance(hub: Hub) -> None:
    with hub.client(hub.clinician) as client:
        tasks = {t["task_id"]: t for t in client.get("/v1/tasks").json()["tasks"]}
    task = tasks[hub.task]
    assert task["labels"] == list(LABELS) and task["modality"] == "chest X-ray"
    assert len(task["models"]) == 2
    for model in task["models"]:
        assert model["digest"].startswith("sha256:") and model["site_fingerprint"]
        assert set(model) == {"name", "version", "digest", "site_fingerprint", "backbone"}


def test_diagnosis_json_stored_reviewed_and_audited(hub: Hub) -> None:
    data = query_image(7)
    response = _diagnose(hub, data, k="3")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["label"] in LABELS and body["arbiter"] == "consensus (no generalist)"
    assert body["no_generalist"] is True and body["generalist_used"] is False
    assert body["notice"] == "decision support, not for use without clinician review"
    assert len(body["specialists"]) == 2 and len(body["similar_cases"]) == 3
    for s in body["specialists"]:
        assert s["digest"].startswith("sha256:") and s["approved_by"] == "tester" and s["approved_at"]
        assert set(s["probabilities"]) == set(LABELS)
    case = body["similar_cases"][0]
    assert case["specialist"] in {s["model_name"] for s in body["specialists"]}
    with hub.client(hub.clinician) as client:
        thumb = client.get(case["thumbnail_url"])
        assert thumb.status_code == 200 and thumb.content[:8] == b"\x89PNG\r\n\x1a\n"
        _error(client.get(f"/v1/cases/{hub.task}/no-such-case/thumbnail"), 404, "GSCO-804")
        stored = client.get(f"/v1/diagnoses/{body['id']}").json()
        assert stored["label"] == body["label"] and stored["review"] is None
        other = next(label for label in LABELS if label != body["label"])
        _error(
            client.post(f"/v1/diagnoses/{body['id']}/review", json={"action": "override"}), 422, "GSCO-800"
        )
        _error(
            client.post(f"/v1/diagnoses/{body['id']}/review", json={"action": "override", "label": "x"}),
            422,
            "GSCO-800",
        )
        reviewed = client.post(
            f"/v1/diagnoses/{body['id']}/review", json={"action": "override", "label": other, "comment": "no"}
        ).json()
        assert reviewed["review"]["label"] == other and reviewed["review"]["reviewer"] == "clinician:dr-who#1"
        stored = client.get(f"/v1/diagnoses/{body['id']}").json()
        assert stored["review"] == reviewed["review"] and stored["reviews"] == [reviewed["review"]]
        _error(client.get("/v1/diagnoses/unknown"), 404, "GSCO-804")
    with hub.client(hub.admin) as client:  # a second reviewer confirms the AI's label: both are kept
        confirmed = client.post(f"/v1/diagnoses/{body['id']}/review", json={"action": "confirm"}).json()
        stored = client.get(f"/v1/diagnoses/{body['id']}").json()
    assert (
        confirmed["review"]["label"] == body["label"]
        and confirmed["review"]["reviewer"] == "admin:it-admin#2"
    )
    assert stored["review"] == confirmed["review"]
    assert stored["reviews"] == [reviewed["review"], confirmed["review"]]
    with hub.client(hub.admin) as client:
        entries = client.get("/v1/audit", params={"limit": 1000}).json()["entries"]
    mine = [e for e in entries if (e["decision"] or {}).get("id") == body["id"]]
    assert [e["action"] for e in mine] == ["diagnosis", "review", "review"]
    import hashlib

    assert mine[0]["image_sha256"] == hashlib.sha256(data).hexdigest()
    assert mine[0]["models"] == [
        {"name": s["model_name"], "version": s["version"], "digest": s["digest"]} for s in body["specialists"]
    ]
    assert mine[1]["review"]["label"] == other and mine[1]["actor"] == "clinician:dr-who#1"


def test_dicom_input_sr_output_and_audit_without_patient_tags(hub: Hub) -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (28, 28), dtype=np.uint8)
    data = _dicom(pixels)
    response = _diagnose(hub, data, format="dicom-sr")
    assert response.status_code == 200 and response.headers["content-type"] == "application/dicom"
    sr = hd.sr.srread(io.BytesIO(response.content))
    assert sr.SeriesDescription == "AI generated, not for clinical use"
    groups = sr.content.get_image_measurement_groups()
    assert len(groups) == 3
    texts: list[str] = []
    pydicom.dcmread(io.BytesIO(response.content)).walk(
        lambda _ds, elem: (
            texts.append(str(elem.value))
            if elem.keyword in ("TextValue", "ReferencedSOPInstanceUID")
            else None
        )
    )
    source = pydicom.dcmread(io.BytesIO(data))
    assert source.SOPInstanceUID in texts  # references the source image
    assert "approved_by=tester" in texts and sum(t.startswith("digest=sha256:") for t in texts) == 2
    assert sum(t.startswith("site_fingerprint=") for t in texts) == 2
    with hub.client(hub.admin) as client:
        entries = json.dumps(client.get("/v1/audit", params={"limit": 1000}).json())
    assert "PLANTED-123" not in entries and "Planted" not in entries
    assert data[:200].hex() not in entries


def test_the_fhir_models_are_imported_in_the_background_at_start(hub: Hub) -> None:
    loading = hub.app.state.fhir_models  # type: ignore[attr-defined]
    assert loading.name == "fhir-r4-models" and loading.daemon
    loading.join(timeout=600)
    assert not loading.is_alive() and r4_models.cache_info().currsize == 1


def test_accept_header_gives_fhir_r4_bundle(hub: Hub) -> None:
    with hub.client(hub.clinician) as client:
        response = client.post(
            "/v1/diagnoses",
            data={"task_id": hub.task},
            files={"image": ("x.png", query_image(2))},
            headers={"Accept": "application/fhir+json"},
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json; fhirVersion=4.0"
    body = response.json()
    bundle = validate_r4(body)
    assert bundle.type == "collection" and len(bundle.entry) == 4
    resources = [validate_r4(e["resource"]) for e in body["entry"]]  # each against its R4 model
    assert [type(r).__name__ for r in resources] == ["DiagnosticReport"] + ["Observation"] * 3
    assert all(r.meta.security[0].code == "AIAST" for r in resources)
    assert all(r.meta.tag[0].display == "AI generated, not for clinical use" for r in resources)
    assert [ref.reference for ref in resources[0].result] == [e["fullUrl"] for e in body["entry"][1:]]
    assert "approved by tester" in str(resources[2].method.text)
    assert str(resources[0].text.div).startswith('<div xmlns="http://www.w3.org/1999/xhtml">')


def test_answers_and_records_are_built_off_the_event_loop(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """An SR, a FHIR Bundle and the database writes run in the threadpool: one slow request
    must not stall every other one on the loop."""
    seen: list[tuple[str, bool]] = []

    def spy(name: str, original):
        def wrapped(*args, **kwargs):
            try:
                asyncio.get_running_loop()
                on_loop = True
            except RuntimeError:
                on_loop = False
            seen.append((name, on_loop))
            return original(*args, **kwargs)

        return wrapped

    records = hub.app.state.hub.records  # type: ignore[attr-defined]
    monkeypatch.setattr(routes_clinical, "build_sr", spy("sr", routes_clinical.build_sr))
    monkeypatch.setattr(routes_clinical, "build_bundle", spy("fhir", routes_clinical.build_bundle))
    monkeypatch.setattr(records, "save_decision", spy("save_decision", records.save_decision))
    monkeypatch.setattr(records, "append", spy("audit", records.append))
    for output in ("dicom-sr", "fhir", "json"):
        pixels = np.random.default_rng(4).integers(0, 256, (28, 28), dtype=np.uint8)
        response = _diagnose(hub, _dicom(pixels), format=output)
        assert response.status_code == 200, response.text
    assert seen == [
        ("sr", False), ("save_decision", False), ("audit", False),
        ("fhir", False), ("save_decision", False), ("audit", False),
        ("save_decision", False), ("audit", False),
    ]  # fmt: skip


def test_the_fhir_validator_is_r4_and_refuses_what_r4_lacks() -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        "status": "preliminary",
        "code": {"text": "x"},
    }
    assert type(validate_r4(report)).__module__.endswith("R4.core.diagnostic_report")
    with pytest.raises(ValueError, match="note"):  # DiagnosticReport.note exists from R5 on only
        validate_r4({**report, "note": [{"text": "n"}]})
    with pytest.raises(ValueError, match="code"):  # required in R4
        validate_r4({"resourceType": "Observation", "status": "preliminary"})
    with pytest.raises(ValueError, match="not an R4 resource type"):  # R4B's, not in R4
        validate_r4({"resourceType": "SubscriptionTopic", "status": "active"})


def test_limits_are_clear_4xx(hub: Hub) -> None:
    too_big = b"\x89PNG" + bytes(1024 * 1024 + 10)
    _error(_diagnose(hub, too_big), 413, "GSCO-813")
    _error(_diagnose(hub, b"hello, not an image"), 422, "GSCO-822")
    _error(_diagnose(hub, query_image(4)[:60]), 422, "GSCO-822")
    _error(_diagnose(hub, _dicom(None)), 422, "GSCO-822")
    _error(_diagnose(hub, png(np.full((28, 28), 7, dtype=np.uint8))), 422, "GSCO-822")
    floats = np.random.default_rng(8).random((28, 28)).astype(np.float32)
    assert _diagnose(hub, _float_dicom(floats)).status_code == 200  # float pixels are an image
    floats[5, 5] = np.nan
    nan = _diagnose(hub, _float_dicom(floats))
    _error(nan, 422, "GSCO-822")
    assert "NaN" in nan.json()["error"]["message"]  # refused for the NaN, never given a label
    bomb = io.BytesIO()
    from PIL import Image

    Image.new("L", (8000, 8000)).save(bomb, format="PNG")
    _error(_diagnose(hub, bomb.getvalue()), 422, "GSCO-822")
    with hub.client(hub.clinician) as client:
        unknown = client.post(
            "/v1/diagnoses", data={"task_id": "nope"}, files={"image": ("x", query_image())}
        )
        _error(unknown, 404, "GSCO-804")
        _error(client.post("/v1/diagnoses", data={"task_id": hub.task}), 422, "GSCO-800")
        _error(client.post("/v1/diagnoses", content=b"x"), 422, "GSCO-800")


@pytest.mark.parametrize("malformed", sorted(MALFORMED_DICOM))
def test_a_malformed_dicom_upload_is_a_422_naming_the_problem_not_the_value(hub: Hub, malformed: str) -> None:
    named, make = MALFORMED_DICOM[malformed]
    response = _diagnose(hub, make())
    _error(response, 422, "GSCO-822")
    message = response.json()["error"]["message"]
    assert named in message and "SMITH" not in message
    assert "SMITH" not in hub.log.getvalue()  # nor in the hub's log (pydicom logs invalid values)


def test_reports_without_generalist_is_503(hub: Hub) -> None:
    with hub.client(hub.clinician) as client:
        response = client.post(
            "/v1/reports", data={"task_id": hub.task}, files={"image": ("x", query_image())}
        )
    _error(response, 503, "GSCO-600")
    assert "no generalist is configured" in response.json()["error"]["message"]


def test_token_never_in_logs(hub: Hub) -> None:
    _diagnose(hub, query_image(5))
    with hub.client(hub.revoked) as client:
        client.get("/v1/tasks")
    log = hub.log.getvalue()
    assert log  # the log was captured
    for token in (hub.clinician, hub.admin, hub.revoked):
        assert token not in log


def test_metrics_move_by_known_amounts(hub: Hub) -> None:
    before = hub.metrics()
    for seed in (11, 12):
        assert _diagnose(hub, query_image(seed)).status_code == 200
    _diagnose(hub, b"junk")
    after = hub.metrics()
    key = 'gsco_hub_requests_total{route="/v1/diagnoses",status="200"}'
    assert metric(after, key) - metric(before, key) == 2
    err = 'gsco_hub_errors_total{code="GSCO-822"}'
    assert metric(after, err) - metric(before, err) == 1
    done = f'gsco_hub_diagnoses_total{{task="{hub.task}"}}'
    assert metric(after, done) - metric(before, done) == 2
    assert f'gsco_hub_models_loaded{{task="{hub.task}"}} 2.0' in after
    assert "gsco_hub_request_seconds_bucket" in after and "gsco_hub_cache_age_seconds 0.0" in after


def test_webhook_hmac(hub: Hub) -> None:
    body = json.dumps({"entity": "model_version_tag", "action": "set"}).encode()
    stamp = str(int(time.time()))
    good = {
        "X-MLflow-Delivery-Id": "d-1",
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": webhook.signature(WEBHOOK_SECRET, "d-1", stamp, body),
        "Content-Type": "application/json",
    }
    with hub.client() as client:
        assert client.post("/v1/admin/webhook", content=body, headers=good).status_code == 200
        bad = {**good, "X-MLflow-Signature": webhook.signature("wrong-secret-0123456789", "d-1", stamp, body)}
        _error(client.post("/v1/admin/webhook", content=body, headers=bad), 401, "GSCO-520")
        missing = {k: v for k, v in good.items() if k != "X-MLflow-Signature"}
        _error(client.post("/v1/admin/webhook", content=body, headers=missing), 401, "GSCO-520")
        old = str(int(time.time()) - 3600)
        stale = {
            **good,
            "X-MLflow-Timestamp": old,
            "X-MLflow-Signature": webhook.signature(WEBHOOK_SECRET, "d-1", old, body),
        }
        _error(client.post("/v1/admin/webhook", content=body, headers=stale), 401, "GSCO-520")


def test_hot_approval_and_revocation_while_serving(hub: Hub) -> None:
    world, task = hub.world, hub.task
    # The real third specialist is approved, then revoked: no other test of this registry serves it.
    name, version = publish_real(world, task, hub.real[2], approve=False)
    retriever = hub.app.state.hub.runtime.engine.retriever(task)
    swaps = "gsco_hub_pool_swaps_total"
    swaps_before = metric(hub.metrics(), swaps)
    world.approve(name, version)
    with hub.client(hub.admin) as client:
        served = client.post("/v1/admin/refresh").json()["tasks"][task]
        assert metric(client.get("/metrics").text, swaps) > swaps_before  # the approval was a swap
    assert f"{name}/{version}" in served and len(served) == 3
    assert len(_diagnose(hub, query_image(8)).json()["specialists"]) == 3
    assert retriever.indexes_in_memory == 3
    world.revoke(name, version)
    deadline = time.time() + 30  # the background poll (0.5 s) applies it without a refresh call
    while time.time() < deadline:
        with hub.client(hub.clinician) as client:
            models = [t for t in client.get("/v1/tasks").json()["tasks"] if t["task_id"] == task][0]["models"]
        if len(models) == 2:
            break
        time.sleep(0.2)
    assert f"{name}/{version}" not in {f"{m['name']}/{m['version']}" for m in models}
    body = _diagnose(hub, query_image(9)).json()
    assert name not in {s["model_name"] for s in body["specialists"] if s["version"] == version}
    assert len(body["specialists"]) == 2 and retriever.indexes_in_memory == 2

"""Clinical routes: tasks, diagnoses (JSON, DICOM SR or FHIR), reviews, case thumbnails, reports."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from gsco_common.errors import GscoError, NotFoundError, RequestError, RuntimeServiceError
from hub.service.audit import DIAGNOSIS, REPORT, REVIEW
from hub.service.auth import require
from hub.service.decisions import decision_body, models_of
from hub.service.dicom_sr import build_sr
from hub.service.fhir import FHIR_VERSION, build_bundle
from hub.service.form import FORM_OVERHEAD, FORM_SCHEMA, DiagnosisForm, parse_form, read_capped
from hub.service.intake import Upload, decode
from hub.service.sr_source import check_sr_source
from hub.service.tokens import CLINICIAN, TokenInfo
from registry.bundle.free_text import looks_identifying

router = APIRouter(prefix="/v1", tags=["clinical"])
clinician = require(CLINICIAN)
DICOM_TYPE = "application/dicom"
FHIR_TYPE = "application/fhir+json"
THUMBNAIL_PX = 96


class ReviewIn(BaseModel):
    """A clinician's review: confirm the label, or override it with one of the task's labels."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["confirm", "override"]
    label: str | None = Field(default=None, max_length=200)
    comment: str | None = Field(default=None, max_length=2000)


def _output_format(request: Request, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    accept = request.headers.get("accept", "")
    if DICOM_TYPE in accept:
        return "dicom-sr"
    if FHIR_TYPE in accept:
        return "fhir"
    return "json"


async def _read_upload(request: Request) -> tuple[DiagnosisForm, Upload]:
    """The form and its decoded image, parsed and decoded in the threadpool (never on the event loop)."""
    hub = request.app.state.hub
    limit = hub.settings.max_upload_bytes
    body = await read_capped(request.stream(), limit + FORM_OVERHEAD)
    return await run_in_threadpool(_parse_and_decode, hub, request.headers.get("content-type", ""), body)


def _parse_and_decode(hub: Any, content_type: str, body: bytes) -> tuple[DiagnosisForm, Upload]:
    form = parse_form(content_type, body)
    hub.runtime.task(form.task_id)
    settings = hub.settings
    pads = _pads(hub, form.task_id)
    return form, decode(
        form.image, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels, pads=pads
    )


def _pads(hub: Any, task_id: str) -> bool:
    """Whether a specialist serving the task now pads the image to a square (card ``resize: pad``).

    With none loaded the answer is yes, the stricter pixel count (the request fails anyway).
    """
    try:
        specialists = hub.runtime.engine.pool.snapshot(task_id).specialists
    except GscoError:
        return True
    return any(s.info.preprocessing.resize == "pad" for s in specialists)


def _answer(output: str, result: dict[str, Any], upload: Upload) -> Response | dict[str, Any]:
    if output == "dicom-sr":
        return Response(build_sr(result, upload.dicom), media_type=DICOM_TYPE)
    if output == "fhir":
        return JSONResponse(build_bundle(result), media_type=f"{FHIR_TYPE}; fhirVersion={FHIR_VERSION}")
    return result


@router.get("/tasks")
def list_tasks(request: Request, _: TokenInfo = Depends(clinician)) -> dict[str, Any]:
    """Served tasks with their labels, modality and the specialists serving now."""
    hub = request.app.state.hub
    snapshots = hub.runtime.engine.pool
    tasks = []
    for task in hub.runtime.tasks():
        models = []
        status = snapshots.status().tasks.get(task.task_id, [])
        if status:
            for s in snapshots.snapshot(task.task_id).specialists:
                models.append(
                    {
                        "name": s.info.name,
                        "version": s.info.version,
                        "digest": s.info.model_digest,
                        "site_fingerprint": s.info.site_fingerprint,
                        "backbone": s.info.backbone,
                    }
                )
        tasks.append(
            {
                "task_id": task.task_id,
                "labels": list(task.labels),
                "modality": task.modality,
                "models": models,
            }
        )
    return {"tasks": tasks}


@router.post("/diagnoses", openapi_extra=FORM_SCHEMA, response_model=None)
async def diagnose(
    request: Request,
    fmt: Literal["json", "dicom-sr", "fhir"] | None = Query(None, alias="format"),
    token: TokenInfo = Depends(clinician),
) -> Response | dict[str, Any]:
    """Diagnose one image (PNG, JPEG or DICOM) with the task's approved specialists.

    The answer (an SR or FHIR Bundle too) is built before the decision is stored and audited:
    a request that fails leaves no decision behind that its client never got.
    """
    hub = request.app.state.hub
    form, upload = await _read_upload(request)
    output = _output_format(request, fmt)
    if output == "dicom-sr" and upload.dicom is not None:
        check_sr_source(upload.dicom)
    return await run_in_threadpool(_diagnose_and_record, hub, form, upload, output, token.actor)


def _diagnose_and_record(
    hub: Any, form: DiagnosisForm, upload: Upload, output: str, actor: str
) -> Response | dict[str, Any]:
    """Decide, build the answer, then store, audit and count the decision; the answer.

    Run in the threadpool as a whole: building an SR or a FHIR Bundle takes tens of
    milliseconds and the database writes wait on disk, neither of which may stall the event loop.
    """
    decision = hub.runtime.engine.diagnose(upload.pixels, form.task_id, use_generalist=form.generalist)
    result = decision_body(decision, k=form.k, low_confidence_below=hub.settings.low_confidence_below)
    answer = _answer(output, result, upload)
    hub.records.save_decision(result["id"], result["task_id"], result)
    hub.records.append(
        actor,
        DIAGNOSIS,
        task_id=result["task_id"],
        image_sha256=upload.sha256,
        models=models_of(result),
        decision={k: result[k] for k in ("id", "label", "confidence", "arbiter", "low_confidence")},
    )
    hub.metrics.diagnoses.labels(task=result["task_id"]).inc()
    return answer


@router.get("/diagnoses/{decision_id}")
def get_decision(decision_id: str, request: Request, _: TokenInfo = Depends(clinician)) -> dict[str, Any]:
    """The stored decision and its review (never the image)."""
    return request.app.state.hub.records.decision(decision_id)


@router.post("/diagnoses/{decision_id}/review")
def review(
    decision_id: str, body: ReviewIn, request: Request, token: TokenInfo = Depends(clinician)
) -> dict[str, Any]:
    """Record the clinician's confirmation or override (audited)."""
    hub = request.app.state.hub
    stored = hub.records.decision(decision_id)
    labels = hub.runtime.task(stored["task_id"]).labels
    if body.action == "override" and body.label not in labels:
        raise RequestError(f"an override needs 'label', one of {list(labels)}")
    if body.action == "confirm" and body.label not in (None, stored["label"]):
        raise RequestError("a confirmation takes no 'label' but the AI's", hint="to change it, override")
    if body.comment and looks_identifying(body.comment):
        raise RequestError(
            "the comment looks identifying (a name, record number, date, address, phone number, "
            "e-mail or path): a review is kept in the audit log for good, and other clinicians read it",
            hint="describe the finding without identifiers; the decision id already links the case",
        )
    label = body.label if body.action == "override" else stored["label"]
    record = {
        "action": body.action,
        "label": label,
        "ai_label": stored["label"],
        "comment": body.comment,
        "reviewer": token.actor,
        "at": datetime.now(UTC).isoformat(),
    }
    hub.records.save_review(decision_id, record)
    hub.records.append(
        token.actor,
        REVIEW,
        task_id=stored["task_id"],
        models=models_of(stored),
        decision={"id": decision_id, "label": stored["label"]},
        review=record,
    )
    return {"id": decision_id, "review": record}


@router.get("/cases/{task_id}/{case_id}/thumbnail", response_class=Response)
def thumbnail(task_id: str, case_id: str, request: Request, _: TokenInfo = Depends(clinician)) -> Response:
    """A small PNG of a de-identified reference case of the task's case library."""
    hub = request.app.state.hub
    hub.runtime.task(task_id)
    retriever = hub.runtime.engine.retriever(task_id)
    library = retriever.library if retriever is not None else None
    if library is None or case_id not in library.case_ids:
        raise NotFoundError("no such reference case")
    pixels = library.images[library.case_ids.index(case_id)]
    image = Image.fromarray(pixels if pixels.dtype.name == "uint8" else (pixels >> 8).astype("uint8"))
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Response(buffer.getvalue(), media_type="image/png")


@router.post("/reports", openapi_extra=FORM_SCHEMA)
async def report(request: Request, token: TokenInfo = Depends(clinician)) -> dict[str, Any]:
    """A report written by the generalist with the specialists' findings as context (503 without one)."""
    hub = request.app.state.hub
    if hub.runtime.engine.generalist is None:
        raise RuntimeServiceError(
            "no generalist is configured for this hub: reports need one",
            hint="set generalist_url in the hub's --config file",
        )
    form, upload = await _read_upload(request)
    written = await run_in_threadpool(hub.runtime.engine.report, upload.pixels, form.task_id)
    models = [{"name": s.model_name, "version": s.version, "digest": s.digest} for s in written.specialists]
    await run_in_threadpool(
        hub.records.append,
        token.actor,
        REPORT,
        task_id=form.task_id,
        image_sha256=upload.sha256,
        models=models,
    )
    return {
        "task_id": written.task_id,
        "text": written.text,
        "generalist": written.generalist,
        "ai_label": written.disclaimer,
        "models": models,
    }

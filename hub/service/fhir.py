"""A decision as a FHIR R4 Bundle: one ``DiagnosticReport`` and one ``Observation`` per finding.

FHIR R4 (4.0.1), validated with ``fhircraft``'s R4 models (pydantic 2, generated from the
``hl7.fhir.r4.core`` 4.0.1 definitions): ``fhir.resources`` 7 and later ship only R4B and R5, and
its last R4 release needs pydantic 1. Every resource is validated with its own R4 model (unknown
elements, wrong types and missing required elements are refused), then the Bundle around them.
The models take seconds to import (a minute on a loaded machine), so the app imports them in
the background once its runtime has started (:func:`r4_models`); the first FHIR answer waits only
for what is left of that import. Every resource carries the ``AIAST`` security label (HL7 v3
ObservationValue "artificial intelligence asserted") and the same provenance as the DICOM SR: the
hub's algorithm and version, and per specialist its version, bundle digest, site fingerprint and
approval record.

fhircraft's import calls ``logging.basicConfig(level=INFO)``: the root logger's level and handlers
are put back as they were (:func:`root_logging_kept`), so the hub, not a library, decides what
its log gets (at INFO highdicom, for one, writes each DICOM upload's SOPInstanceUID).
"""

from __future__ import annotations

import contextlib
import functools
import html
import logging
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from gsco_runtime.decision import AI_LABEL
from hub.service.decisions import NOTICE
from hub.service.dicom_sr import ALGORITHM, hub_version

AI_TAG = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "AIAST",
    "display": "artificial intelligence asserted",
}
GSCO_SYSTEM = "urn:gsco:label"
MODEL_SYSTEM = "urn:gsco:model"
FHIR_VERSION = "4.0"  # the ``fhirVersion`` parameter of ``application/fhir+json`` for R4 (4.0.1)


@contextlib.contextmanager
def root_logging_kept() -> Iterator[None]:
    """Put the root logger's level and handlers back as they were before the block."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        for handler in [handler for handler in root.handlers if handler not in handlers]:
            root.removeHandler(handler)
            handler.close()
        for handler in [handler for handler in handlers if handler not in root.handlers]:
            root.addHandler(handler)


@functools.cache
def r4_models() -> ModuleType:
    """The FHIR R4 core resource models of fhircraft (imported once per process)."""
    with root_logging_kept():
        from fhircraft.fhir.resources.datatypes.R4 import core

    return core


def validate_r4(resource: dict[str, Any]) -> Any:
    """``resource`` (FHIR JSON) as the R4 model named by its ``resourceType``; refuses invalid R4."""
    model = getattr(r4_models(), str(resource.get("resourceType")), None)
    if model is None:
        raise ValueError(f"{resource.get('resourceType')!r} is not an R4 resource type")
    return model.model_validate(resource)


def _meta() -> dict[str, Any]:
    return {
        "security": [AI_TAG],
        "tag": [{"system": "urn:gsco", "code": "ai-generated", "display": AI_LABEL}],
    }


def _device_note(model: dict[str, Any]) -> str:
    return (
        f"{model['model_name']} v{model['version']} digest {model['digest']} "
        f"site {model['site_fingerprint']} approved by {model['approved_by']} at {model['approved_at']}"
    )


def _narrative(text: str) -> dict[str, str]:
    return {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{html.escape(text)}</div>',
    }


def _urn(decision_id: str, part: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.UUID(decision_id), part)}"


def _observation(
    full_url: str, label: str, narrative: str, code: str, method: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """One preliminary, AI-tagged Observation entry whose value is ``label``."""
    resource = {
        "resourceType": "Observation",
        "meta": _meta(),
        "text": _narrative(narrative),
        "status": "preliminary",
        "code": {"text": code},
        "valueCodeableConcept": {"coding": [{"system": GSCO_SYSTEM, "code": label}], "text": label},
        "method": method,
        **extra,
    }
    return {"fullUrl": full_url, "resource": resource}


def build_bundle(decision: dict[str, Any]) -> dict[str, Any]:
    """The FHIR R4 Bundle (collection) of ``decision`` (the API's decision JSON), validated."""
    task = decision["task_id"]
    observations = [
        _observation(
            _urn(decision["id"], "final"),
            decision["label"],
            f"{decision['label']} ({AI_LABEL})",
            f"{task} finding",
            {"text": f"{ALGORITHM} {hub_version()}, arbiter {decision['arbiter']}"},
            note=[{"text": f"confidence {decision['confidence']:.6f}. {AI_LABEL}"}],
        )
    ]
    for index, model in enumerate(decision["specialists"]):
        observations.append(
            _observation(
                _urn(decision["id"], f"model-{index}"),
                model["label"],
                f"{model['label']}: {_device_note(model)}",
                f"{task} specialist finding",
                {
                    "coding": [{"system": MODEL_SYSTEM, "code": f"{model['model_name']}/{model['version']}"}],
                    "text": _device_note(model),
                },
            )
        )
    report = {
        "fullUrl": f"urn:uuid:{decision['id']}",
        "resource": {
            "resourceType": "DiagnosticReport",
            "id": decision["id"],
            "meta": _meta(),
            "text": _narrative(f"{decision['label']} ({AI_LABEL}; {NOTICE})"),
            "status": "preliminary",
            "code": {"text": f"AI decision support: {decision['task_id']}"},
            "issued": decision["created_at"],
            "result": [{"reference": entry["fullUrl"]} for entry in observations],
            "conclusion": f"{decision['label']} ({AI_LABEL}; {NOTICE})",
        },
    }
    entries = [
        {"fullUrl": entry["fullUrl"], "resource": validate_r4(entry["resource"])}
        for entry in [report, *observations]
    ]
    bundle = r4_models().Bundle(type="collection", meta=_meta(), entry=entries)
    return bundle.model_dump(mode="json", exclude_none=True)

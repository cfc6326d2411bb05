"""A decision as a FHIR Bundle: one ``DiagnosticReport`` and one ``Observation`` per finding.

Built and validated with ``fhir.resources`` R4B models (FHIR 4.3.0; see docs/hub-service.md for
why not 4.0.1). Every resource carries the ``AIAST`` security label (HL7 v3 ObservationValue
"artificial intelligence asserted") and the same provenance as the DICOM SR: the hub's
algorithm and version, and per specialist its version, bundle digest, site fingerprint and
approval record.
"""

from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.bundle import Bundle

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


def _urn(decision_id: str, part: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.UUID(decision_id), part)}"


def build_bundle(decision: dict[str, Any]) -> dict[str, Any]:
    """The FHIR Bundle (collection) of ``decision`` (the API's decision JSON), validated."""
    final_ref = _urn(decision["id"], "final")
    observations = [
        {
            "fullUrl": final_ref,
            "resource": {
                "resourceType": "Observation",
                "meta": _meta(),
                "status": "preliminary",
                "code": {"text": f"{decision['task_id']} finding"},
                "valueCodeableConcept": {
                    "coding": [{"system": GSCO_SYSTEM, "code": decision["label"]}],
                    "text": decision["label"],
                },
                "method": {"text": f"{ALGORITHM} {hub_version()}, arbiter {decision['arbiter']}"},
                "note": [{"text": f"confidence {decision['confidence']:.6f}. {AI_LABEL}"}],
            },
        }
    ]
    for index, model in enumerate(decision["specialists"]):
        observations.append(
            {
                "fullUrl": _urn(decision["id"], f"model-{index}"),
                "resource": {
                    "resourceType": "Observation",
                    "meta": _meta(),
                    "status": "preliminary",
                    "code": {"text": f"{decision['task_id']} specialist finding"},
                    "valueCodeableConcept": {
                        "coding": [{"system": GSCO_SYSTEM, "code": model["label"]}],
                        "text": model["label"],
                    },
                    "method": {
                        "coding": [
                            {"system": MODEL_SYSTEM, "code": f"{model['model_name']}/{model['version']}"}
                        ],
                        "text": _device_note(model),
                    },
                },
            }
        )
    report = {
        "fullUrl": f"urn:uuid:{decision['id']}",
        "resource": {
            "resourceType": "DiagnosticReport",
            "id": decision["id"],
            "meta": _meta(),
            "status": "preliminary",
            "code": {"text": f"AI decision support: {decision['task_id']}"},
            "issued": decision["created_at"],
            "result": [{"reference": entry["fullUrl"]} for entry in observations],
            "conclusion": f"{decision['label']} ({AI_LABEL}; {NOTICE})",
        },
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "meta": _meta(),
        "entry": [report, *observations],
    }
    return Bundle.model_validate(bundle).model_dump(mode="json", exclude_none=True)

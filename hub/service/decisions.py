"""The API's decision JSON, built from the runtime's :class:`Decision`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from gsco_runtime.decision import NO_GENERALIST, Decision

NOTICE = "decision support, not for use without clinician review"
LOW_CONFIDENCE_NOTE = "low confidence: the specialists and similar cases do not agree enough"


def decision_body(decision: Decision, *, k: int | None, low_confidence_below: float) -> dict[str, Any]:
    """The decision as the API returns and stores it (the image never appears here)."""
    decision_id = str(uuid.uuid4())
    cases = decision.retrieved[:k] if k is not None else decision.retrieved
    low = decision.confidence < low_confidence_below
    notes = list(decision.notes) + ([LOW_CONFIDENCE_NOTE] if low else [])
    return {
        "id": decision_id,
        "task_id": decision.task_id,
        "label": decision.label,
        "confidence": decision.confidence,
        "arbiter": decision.arbiter,
        "generalist_used": decision.generalist is not None and not decision.fallback,
        "notice": NOTICE,
        "ai_label": decision.disclaimer,
        "no_generalist": any(note.startswith(NO_GENERALIST) for note in decision.notes),
        "low_confidence": low,
        "specialists": [
            {
                "model_name": s.model_name,
                "version": s.version,
                "digest": s.digest,
                "site_fingerprint": s.site_fingerprint,
                "backbone": s.backbone,
                "approved_by": s.approved_by,
                "approved_at": s.approved_at,
                "label": s.label,
                "probability": s.probability,
                "probabilities": s.probabilities,
            }
            for s in decision.specialists
        ],
        "similar_cases": [
            {
                "case_id": c.case_id,
                "label": c.label,
                "similarity": c.similarity,
                "specialist": c.specialist,
                "thumbnail_url": f"/v1/cases/{decision.task_id}/{quote(c.case_id, safe='')}/thumbnail",
            }
            for c in cases
        ],
        "generalist_text": decision.generalist_answer,
        "notes": notes,
        "created_at": datetime.now(UTC).isoformat(),
    }


def models_of(body: dict[str, Any]) -> list[dict[str, str]]:
    """The models behind a decision, as the audit trail records them."""
    return [
        {"name": s["model_name"], "version": s["version"], "digest": s["digest"]} for s in body["specialists"]
    ]

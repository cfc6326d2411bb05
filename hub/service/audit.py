"""The hub's audit trail and decision store: every diagnosis and every review, never an image.

An entry records who (token role, name and id), when, the task, the uploaded image's SHA-256,
the models and versions behind the answer and the decision or review. The image itself and any
DICOM tag of the upload are never written: the routes pass only the hash and the decision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from gsco_common.errors import NotFoundError
from hub.service.database import AuditRow, DecisionRow, HubDatabase

DIAGNOSIS = "diagnosis"
REVIEW = "review"
REPORT = "report"


def _entry(row: AuditRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": row.at.isoformat(),
        "actor": row.actor,
        "action": row.action,
        "task_id": row.task_id,
        "image_sha256": row.image_sha256,
        **row.details,
    }


class HubRecords:
    """Stored decisions (for ``GET /v1/diagnoses/{id}`` and reviews) and the audit trail."""

    def __init__(self, db: HubDatabase) -> None:
        self.db = db

    def append(
        self,
        actor: str,
        action: str,
        *,
        task_id: str | None,
        image_sha256: str | None = None,
        models: list[dict[str, str]] | None = None,
        decision: dict[str, Any] | None = None,
        review: dict[str, Any] | None = None,
    ) -> int:
        """Write one audit entry; returns its sequence number."""
        details = {"models": models or [], "decision": decision, "review": review}
        with self.db.session() as session:
            row = AuditRow(
                at=datetime.now(UTC),
                actor=actor,
                action=action,
                task_id=task_id,
                image_sha256=image_sha256,
                details=details,
            )
            session.add(row)
            session.flush()
            return row.seq

    def entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` entries, oldest first."""
        with self.db.session() as session:
            rows = list(session.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)))
            return [_entry(row) for row in reversed(rows)]

    def save_decision(self, decision_id: str, task_id: str, body: dict[str, Any]) -> None:
        with self.db.session() as session:
            session.add(DecisionRow(id=decision_id, task_id=task_id, body=body, review=None))

    def decision(self, decision_id: str) -> dict[str, Any]:
        """The stored decision with its review (None until reviewed)."""
        with self.db.session() as session:
            row = session.get(DecisionRow, decision_id)
            if row is None:
                raise NotFoundError("no diagnosis with this id")
            return {**row.body, "review": row.review}

    def save_review(self, decision_id: str, review: dict[str, Any]) -> None:
        with self.db.session() as session:
            row = session.get(DecisionRow, decision_id)
            if row is None:
                raise NotFoundError("no diagnosis with this id")
            row.review = review

"""The hub's audit trail and decision store: every diagnosis and every review, never an image.

An entry records who (token role, name and id), when, the task, the uploaded image's SHA-256,
the models and versions behind the answer and the decision or review. The image itself and any
DICOM tag of the upload are never written: the routes pass only the hash and the decision.

The trail is tamper-evident like the registry's audit log: entries are hash-chained with
:mod:`gsco_common.audit_chain` (each stores the previous entry's digest and its own digest over
sequence number, time, actor, action, task, image hash, details and that link), so an entry
edited or deleted with plain SQL is found by :meth:`HubRecords.verify` (``gsco-hub audit verify``),
which names the first broken entry. Keep the head digest it prints outside the database to detect
the deletion of the newest entries as well.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from gsco_common.audit_chain import GENESIS, ChainReport, Link, link_digest, verify_links
from gsco_common.errors import AuditError, NotFoundError
from hub.service.database import AuditRow, DecisionRow, HubDatabase, ReviewRow

DIAGNOSIS = "diagnosis"
REVIEW = "review"
REPORT = "report"

# Concurrent writers (several workers, one database) race for the next sequence number; the
# loser hits the primary key (or SQLite's busy snapshot) and appends again after the new head.
_APPEND_ATTEMPTS = 40
_BACKOFF_CAP_S = 0.05


def _columns(row: AuditRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": row.at,
        "actor": row.actor,
        "action": row.action,
        "task_id": row.task_id,
        "image_sha256": row.image_sha256,
    }


def _fields(row: AuditRow) -> dict[str, Any]:
    """What an entry's digest covers: every stored column but the two digests."""
    return {**_columns(row), "details": json.dumps(row.details, sort_keys=True, separators=(",", ":"))}


def _entry(row: AuditRow) -> dict[str, Any]:
    return {**_columns(row), **row.details}


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
        """Write one audit entry after the current head; returns its sequence number."""
        details = {"models": models or [], "decision": decision, "review": review}
        attempt = 1
        while True:
            try:
                return self._append_once(actor, action, task_id, image_sha256, details)
            except (IntegrityError, OperationalError):
                if attempt >= _APPEND_ATTEMPTS:
                    raise
                # another writer took this sequence number: back off a random while, so that
                # racing writers spread out instead of colliding again in lockstep
                time.sleep(random.uniform(0.0, min(_BACKOFF_CAP_S, 0.001 * 2**attempt)))
                attempt += 1

    def _append_once(
        self, actor: str, action: str, task_id: str | None, image_sha256: str | None, details: dict[str, Any]
    ) -> int:
        with self.db.session() as session:
            last = session.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).first()
            row = AuditRow(
                seq=1 if last is None else last.seq + 1,
                at=datetime.now(UTC).isoformat(timespec="microseconds"),
                actor=actor,
                action=action,
                task_id=task_id,
                image_sha256=image_sha256,
                details=details,
                prev_hash=GENESIS if last is None else last.entry_hash,
            )
            row.entry_hash = link_digest(_fields(row), row.prev_hash)
            session.add(row)
            session.flush()
            return row.seq

    def verify(self) -> ChainReport:
        """The chain report; :class:`AuditError` naming the first broken entry if it is broken."""
        with self.db.session() as session:
            rows = session.scalars(select(AuditRow).order_by(AuditRow.seq))
            report = verify_links(Link(r.seq, _fields(r), r.prev_hash, r.entry_hash) for r in rows)
        if not report.ok:
            raise AuditError(
                f"the hub audit trail is broken at entry {report.broken_seq}: {report.reason}",
                hint="the hub database was changed outside the hub; investigate before trusting it",
            )
        return report

    def entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` entries, oldest first."""
        with self.db.session() as session:
            rows = list(session.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)))
            return [_entry(row) for row in reversed(rows)]

    def save_decision(self, decision_id: str, task_id: str, body: dict[str, Any]) -> None:
        with self.db.session() as session:
            session.add(DecisionRow(id=decision_id, task_id=task_id, body=body, review=None))

    def decision(self, decision_id: str) -> dict[str, Any]:
        """The stored decision with its latest review (None until reviewed) and every review, oldest first."""
        with self.db.session() as session:
            row = session.get(DecisionRow, decision_id)
            if row is None:
                raise NotFoundError("no diagnosis with this id")
            query = select(ReviewRow.body).where(ReviewRow.decision_id == decision_id).order_by(ReviewRow.id)
            reviews = list(session.scalars(query))
            return {**row.body, "review": reviews[-1] if reviews else None, "reviews": reviews}

    def save_review(self, decision_id: str, review: dict[str, Any]) -> None:
        """Keep ``review`` after the decision's earlier ones."""
        with self.db.session() as session:
            if session.get(DecisionRow, decision_id) is None:
                raise NotFoundError("no diagnosis with this id")
            session.add(ReviewRow(decision_id=decision_id, body=review))

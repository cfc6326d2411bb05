"""Append-only, hash-chained audit log.

Each entry stores the hash of its predecessor and its own hash over its content (sequence number,
time, actor, action, subject, details, previous hash), with the chain of
:mod:`gsco_common.audit_chain`. Editing or deleting a row with plain SQL breaks the chain at that
row, and :func:`verify_chain` names the first broken entry. Deleting the newest entries leaves a
valid but shorter chain: record the head hash that ``audit verify`` prints somewhere else (a
ticket, an e-mail) to detect that as well.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gsco_common.audit_chain import GENESIS, ChainReport, Link, link_digest, verify_links
from registry.store.tables import AuditRow

__all__ = ["GENESIS", "AuditEntry", "ChainReport", "append", "entries", "verify_chain"]


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    entry_hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "entry_hash": self.entry_hash,
        }


def _fields(seq: int, at: str, actor: str, action: str, subject: str, details: str) -> dict[str, Any]:
    return {"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject, "details": details}


def _entry_hash(seq: int, at: str, actor: str, action: str, subject: str, details: str, prev: str) -> str:
    return link_digest(_fields(seq, at, actor, action, subject, details), prev)


def append(session: Session, *, actor: str, action: str, subject: str, details: dict[str, Any]) -> AuditEntry:
    """Add one entry after the current head (in the caller's transaction).

    Two writers racing for the same sequence number collide on the primary key, so the chain
    never forks; the loser's transaction fails and is retried by the caller.
    """
    last = session.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1).with_for_update()).first()
    seq = 1 if last is None else last.seq + 1
    prev = GENESIS if last is None else last.entry_hash
    at = datetime.now(UTC).isoformat(timespec="microseconds")
    text = json.dumps(details, sort_keys=True, separators=(",", ":"))
    digest = _entry_hash(seq, at, actor, action, subject, text, prev)
    session.add(
        AuditRow(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            details=text,
            prev_hash=prev,
            entry_hash=digest,
        )
    )
    session.flush()
    return AuditEntry(seq, at, actor, action, subject, details, prev, digest)


def entries(session: Session, *, limit: int | None = None) -> list[AuditEntry]:
    """Entries oldest first (the newest ``limit`` ones when given)."""
    query = select(AuditRow).order_by(AuditRow.seq.desc())
    if limit is not None:
        query = query.limit(limit)
    rows = list(reversed(session.scalars(query).all()))
    return [
        AuditEntry(
            r.seq, r.at, r.actor, r.action, r.subject, json.loads(r.details), r.prev_hash, r.entry_hash
        )
        for r in rows
    ]


def verify_chain(session: Session) -> ChainReport:
    """Recompute every hash and link; stop at the first broken entry."""
    rows = session.scalars(select(AuditRow).order_by(AuditRow.seq))
    return verify_links(
        Link(r.seq, _fields(r.seq, r.at, r.actor, r.action, r.subject, r.details), r.prev_hash, r.entry_hash)
        for r in rows
    )

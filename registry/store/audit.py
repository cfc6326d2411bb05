"""Append-only, hash-chained audit log.

Each entry stores the hash of its predecessor and its own hash over its content (sequence number,
time, actor, action, subject, details, previous hash). Editing or deleting a row with plain SQL
breaks the chain at that row, and :func:`verify_chain` names the first broken entry. Deleting the
newest entries leaves a valid but shorter chain: record the head hash that ``audit verify`` prints
somewhere else (a ticket, an e-mail) to detect that as well.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.store.tables import AuditRow

GENESIS = "0" * 64


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


@dataclass(frozen=True)
class ChainReport:
    """Outcome of :func:`verify_chain`; ``broken_seq`` is the first entry that fails."""

    entries: int
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def _entry_hash(seq: int, at: str, actor: str, action: str, subject: str, details: str, prev: str) -> str:
    payload = json.dumps(
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": details,
            "prev": prev,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


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
    prev = GENESIS
    expected_seq = 1
    count = 0
    for row in session.scalars(select(AuditRow).order_by(AuditRow.seq)):
        if row.seq != expected_seq:
            return ChainReport(count, prev, expected_seq, f"entry {expected_seq} is missing (deleted)")
        if row.prev_hash != prev:
            return ChainReport(count, prev, row.seq, "its link to the previous entry is broken")
        recomputed = _entry_hash(
            row.seq, row.at, row.actor, row.action, row.subject, row.details, row.prev_hash
        )
        if recomputed != row.entry_hash:
            return ChainReport(count, prev, row.seq, "its content was modified")
        prev = row.entry_hash
        expected_seq += 1
        count += 1
    return ChainReport(count, prev)

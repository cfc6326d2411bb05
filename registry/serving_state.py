"""The signed serving state: which versions of a task a hub serves, as a statement of the central team.

An MLflow alias can be moved by anyone who may write the tracking store, so it is only the human
view. What a hub serves is the newest *approved set* statement of the task: task, the versions
with their bundle digests and site fingerprints, a sequence number that grows by one with each
statement, and the time, signed with the central approval key. ``approve`` and ``revoke`` issue a
new statement (and keep the alias in sync); statements are stored as entries of the hash-chained
audit log (action ``serving.statement``), so they are part of the audited history too.

A hub checks the signature against its pinned key and refuses a statement whose sequence is lower
than the highest it has seen (:class:`SequenceGuard`, persisted in the hub home): replaying an
older statement, or deleting the newest one from the database, is a rollback and is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session

from gsco_common.errors import ServingStateError
from gsco_common.ids import version_key
from gsco_common.keys import load_public_key_pem
from registry.store import audit
from registry.store.tables import AuditRow

STATEMENT_FORMAT = "gsco-approved-set-1"
STATEMENT_ACTION = "serving.statement"
SEQUENCE_FILE = "serving-sequence.json"


@dataclass(frozen=True)
class ServedVersion:
    """One version a statement lists: registered model name, version, bundle digest, site key."""

    name: str
    version: str
    bundle_digest: str
    site_fingerprint: str

    @property
    def key(self) -> str:
        return version_key(self.name, self.version)


@dataclass(frozen=True)
class ApprovedSet:
    """The versions of ``task`` that serve, as of statement number ``sequence``."""

    task: str
    sequence: int
    issued_at: str
    versions: tuple[ServedVersion, ...]

    def body(self) -> dict[str, Any]:
        return {
            "format": STATEMENT_FORMAT,
            "task": self.task,
            "sequence": self.sequence,
            "issued_at": self.issued_at,
            "versions": [v.__dict__ for v in sorted(self.versions, key=lambda v: v.key)],
        }

    def canonical(self) -> bytes:
        """The exact bytes that are signed (sorted keys, no spaces)."""
        return json.dumps(self.body(), sort_keys=True, separators=(",", ":")).encode("utf-8")

    def digest(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ApprovedSet:
        if not isinstance(body, dict) or body.get("format") != STATEMENT_FORMAT:
            raise ServingStateError(f"not an approved-set statement (expected format {STATEMENT_FORMAT})")
        try:
            versions = tuple(
                ServedVersion(
                    str(v["name"]), str(v["version"]), str(v["bundle_digest"]), str(v["site_fingerprint"])
                )
                for v in body["versions"]
            )
            return cls(str(body["task"]), int(body["sequence"]), str(body["issued_at"]), versions)
        except (KeyError, TypeError, ValueError):
            raise ServingStateError("the approved-set statement is malformed") from None


@dataclass(frozen=True)
class SignedApprovedSet:
    """A statement plus the central key's ECDSA P-256 / SHA-256 signature over its canonical bytes."""

    statement: ApprovedSet
    signature: str

    def to_dict(self) -> dict[str, Any]:
        return {"statement": self.statement.body(), "signature": self.signature}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SignedApprovedSet:
        if not isinstance(data, dict) or not isinstance(data.get("signature"), str):
            raise ServingStateError("the approved-set statement carries no signature")
        return cls(ApprovedSet.from_body(data.get("statement")), data["signature"])

    def verify(self, central_key_pem: bytes) -> ApprovedSet:
        """The statement, if the pinned central key signed it; else :class:`ServingStateError`."""
        try:
            load_public_key_pem(central_key_pem).verify(
                base64.b64decode(self.signature, validate=True),
                self.statement.canonical(),
                ec.ECDSA(hashes.SHA256()),
            )
        except (InvalidSignature, ValueError):
            raise ServingStateError(
                f"the approved set of task {self.statement.task!r} (statement {self.statement.sequence}) "
                "is not signed by the pinned central key",
                hint="the registry database was changed outside gsco-registry",
            ) from None
        return self.statement


def sign_statement(statement: ApprovedSet, key: ec.EllipticCurvePrivateKey) -> SignedApprovedSet:
    signature = key.sign(statement.canonical(), ec.ECDSA(hashes.SHA256()))
    return SignedApprovedSet(statement, base64.b64encode(signature).decode("ascii"))


def newest_statement(session: Session, task: str) -> SignedApprovedSet | None:
    """The task's newest stored statement (unverified: the caller checks it with its pinned key)."""
    row = session.scalars(
        select(AuditRow)
        .where(AuditRow.action == STATEMENT_ACTION, AuditRow.subject == task)
        .order_by(AuditRow.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return SignedApprovedSet.from_dict(json.loads(row.details))


def issue_statement(
    session: Session,
    key: ec.EllipticCurvePrivateKey,
    task: str,
    *,
    add: ServedVersion | None = None,
    remove: str | None = None,
    actor: str,
) -> SignedApprovedSet:
    """Sign and store the task's next statement.

    It is the previous set, less ``remove`` (a ``name/version`` key) and any other version of
    ``add``'s model, plus ``add``: one version per registered model, as the alias has.
    """
    previous = newest_statement(session, task)
    versions = [] if previous is None else list(previous.statement.versions)
    versions = [v for v in versions if v.key != remove and (add is None or v.name != add.name)]
    if add is not None:
        versions.append(add)
    statement = ApprovedSet(
        task=task,
        sequence=1 if previous is None else previous.statement.sequence + 1,
        issued_at=datetime.now(UTC).isoformat(timespec="seconds"),
        versions=tuple(sorted(versions, key=lambda v: v.key)),
    )
    signed = sign_statement(statement, key)
    audit.append(session, actor=actor, action=STATEMENT_ACTION, subject=task, details=signed.to_dict())
    return signed


class SequenceGuard:
    """The highest statement sequence a hub has accepted per task, persisted in the hub home.

    A statement with a lower sequence is a rollback; one with the same sequence but other content
    is a forked history. Both are refused.
    """

    def __init__(self, hub_home: Path) -> None:
        self.path = hub_home / SEQUENCE_FILE

    def _seen(self) -> dict[str, dict[str, Any]]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            raise ServingStateError(f"the hub's {SEQUENCE_FILE} is unreadable") from None
        if not isinstance(data, dict):
            raise ServingStateError(f"the hub's {SEQUENCE_FILE} is malformed")
        return data

    def highest(self, task: str) -> int:
        return int(self._seen().get(task, {}).get("sequence", 0))

    def admit(self, task: str, statement: ApprovedSet | None) -> ApprovedSet | None:
        """Return ``statement`` if it is not older than what was seen (and remember it)."""
        seen = self._seen()
        last = seen.get(task, {"sequence": 0, "digest": None})
        sequence = 0 if statement is None else statement.sequence
        if statement is not None and statement.task != task:
            raise ServingStateError(f"a statement of task {statement.task!r} was offered for task {task!r}")
        if sequence < int(last["sequence"]):
            raise ServingStateError(
                f"rollback refused: the approved set of task {task!r} has sequence {sequence}, "
                f"this hub has already seen {last['sequence']}",
                hint="someone restored or deleted serving state in the registry; the hub keeps its last set",
            )
        if statement is not None and sequence == last["sequence"] and statement.digest() != last["digest"]:
            raise ServingStateError(
                f"the approved set of task {task!r} number {sequence} differs from the one this hub saw"
            )
        if statement is not None and sequence > int(last["sequence"]):
            seen[task] = {"sequence": sequence, "digest": statement.digest()}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(seen, indent=2, sort_keys=True), encoding="utf-8")
            tmp.replace(self.path)
        return statement

"""Revocation by model content: a revoked ``model.onnx`` cannot be approved again under a new card.

Revoking a version withdraws its bundle digest (model + card). The same ``model.onnx`` re-published
with another card, by the same or another site, has a new bundle digest, so the registry also
records the SHA-256 of ``model.onnx`` itself (audit action ``model.digest_revoke``) and refuses to
approve any bundle carrying it. Only the central team can lift that (``model.digest_lift``,
audited, with a reason). The state is derived from the hash-chained audit log, so it is covered
by ``audit verify``.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from gsco_common.errors import RegistryError
from registry.store import audit
from registry.store.tables import AuditRow

DIGEST_REVOKE = "model.digest_revoke"
DIGEST_LIFT = "model.digest_lift"


def revoked_model_digests(session: Session) -> frozenset[str]:
    """``sha256:<hex>`` of every revoked ``model.onnx`` whose revocation was not lifted since."""
    revoked: set[str] = set()
    rows = session.scalars(
        select(AuditRow).where(AuditRow.action.in_((DIGEST_REVOKE, DIGEST_LIFT))).order_by(AuditRow.seq)
    )
    for row in rows:
        digest = json.loads(row.details)["model_digest"]
        if row.action == DIGEST_REVOKE:
            revoked.add(digest)
        else:
            revoked.discard(digest)
    return frozenset(revoked)


def revoke_model_digest(session: Session, model_digest: str, *, actor: str, subject: str) -> None:
    """Record that the model with this content digest is revoked (``subject``: the version revoked)."""
    audit.append(
        session, actor=actor, action=DIGEST_REVOKE, subject=subject, details={"model_digest": model_digest}
    )


def lift_model_digest(session: Session, model_digest: str, *, actor: str, reason: str) -> None:
    """Allow a revoked model content to be approved again (refused if it is not revoked)."""
    if model_digest not in revoked_model_digests(session):
        raise RegistryError(f"model digest {model_digest} is not revoked")
    if not reason.strip():
        raise RegistryError("lifting a model revocation needs a reason (it is kept in the audit log)")
    audit.append(
        session,
        actor=actor,
        action=DIGEST_LIFT,
        subject=model_digest,
        details={"model_digest": model_digest, "reason": reason},
    )

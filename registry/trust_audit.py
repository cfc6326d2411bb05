"""Trust state checked against the audit log, and signed checkpoints of the log's head.

The tables a hub trusts (enrolled sites, their current and retired keys, approval decisions) are
only a fast view: every change to them is also an entry of the hash-chained audit log. :func:`trust_problems`
re-derives the view from the log and lists every disagreement, so un-revoking a site or deleting
an approval row with SQL is found (``gsco-registry verify --all``; a hub refuses to sync from such
a registry).

A hash chain alone can be recomputed by whoever can write the database. At each central-key
operation (approve, revoke, ``audit checkpoint``) the central key signs the current head
(``audit.checkpoint``): a history rewritten before a checkpoint no longer matches a signature the
attacker cannot make. Entries after the newest checkpoint are protected by the chain only.
"""

from __future__ import annotations

import base64
import json
from collections import Counter

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session

from gsco_common.errors import ServingStateError
from gsco_common.keys import fingerprint, load_public_key_pem
from registry.store import audit
from registry.store.tables import ApprovalRow, AuditRow, RetiredKeyRow, SiteRow

CHECKPOINT = "audit.checkpoint"
_DECISIONS = {"model.approve": "approved", "model.reject": "rejected", "model.revoke": "revoked"}


def _head_message(seq: int, head: str) -> bytes:
    return f"gsco-audit-head-1|{seq}|{head}".encode("ascii")


def sign_checkpoint(session: Session, key: ec.EllipticCurvePrivateKey, *, actor: str) -> None:
    """Append an entry carrying the central key's signature over the current head (seq and hash)."""
    last = session.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).first()
    seq, head = (0, audit.GENESIS) if last is None else (last.seq, last.entry_hash)
    signature = key.sign(_head_message(seq, head), ec.ECDSA(hashes.SHA256()))
    audit.append(
        session,
        actor=actor,
        action=CHECKPOINT,
        subject=f"head {seq}",
        details={"seq": seq, "head": head, "signature": base64.b64encode(signature).decode("ascii")},
    )


def _checkpoint_problems(rows: list[AuditRow], central_key_pem: bytes) -> list[str]:
    """A checkpoint must sign exactly the entry before it, with the central key."""
    public = load_public_key_pem(central_key_pem)
    problems = []
    hashes_by_seq = {row.seq: row.entry_hash for row in rows}
    for row in rows:
        if row.action != CHECKPOINT:
            continue
        data = json.loads(row.details)
        seq, head = int(data["seq"]), str(data["head"])
        try:
            public.verify(
                base64.b64decode(data["signature"], validate=True),
                _head_message(seq, head),
                ec.ECDSA(hashes.SHA256()),
            )
        except (InvalidSignature, ValueError):
            problems.append(f"audit checkpoint at entry {row.seq} is not signed by the central key")
            continue
        if seq != row.seq - 1 or hashes_by_seq.get(seq, audit.GENESIS) != head:
            problems.append(f"the history before entry {row.seq} was rewritten (signed head differs)")
    return problems


def _derived_keys(rows: list[AuditRow]) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    """From the log: site -> (current fingerprint, status), and retired fingerprint -> (site, status)."""
    sites: dict[str, tuple[str, str]] = {}
    retired: dict[str, tuple[str, str]] = {}
    for row in rows:
        details = json.loads(row.details) if row.action.startswith("site.") else {}
        if row.action == "site.enroll":
            sites[row.subject] = (details["fingerprint"], "active")
        elif row.action == "site.revoke" and row.subject in sites:
            sites[row.subject] = (sites[row.subject][0], "revoked")
        elif row.action == "site.rotate" and row.subject in sites:
            retired[details["retired_fingerprint"]] = (row.subject, "retired")
            sites[row.subject] = (details["fingerprint"], sites[row.subject][1])
        elif row.action == "site.key_revoke" and details["fingerprint"] in retired:
            retired[details["fingerprint"]] = (row.subject, "revoked")
    return sites, retired


def _site_problems(session: Session, rows: list[AuditRow]) -> list[str]:
    derived, derived_retired = _derived_keys(rows)
    problems = []
    table = {row.name: row for row in session.scalars(select(SiteRow))}
    for name in sorted(set(derived) | set(table)):
        row = table.get(name)
        if row is None:
            problems.append(f"site {name!r} is in the audit log but not in the sites table")
            continue
        if name not in derived:
            problems.append(f"site {name!r} is in the sites table but was never enrolled (audit)")
            continue
        key_fp = fingerprint(load_public_key_pem(row.public_key_pem.encode("ascii")))
        if (row.fingerprint, row.status) != derived[name] or key_fp != derived[name][0]:
            problems.append(f"site {name!r}: key or status in the sites table differ from the audit log")
    retired = {row.fingerprint: row for row in session.scalars(select(RetiredKeyRow))}
    for fp in sorted(set(derived_retired) | set(retired)):
        key = retired.get(fp)
        pem_fp = None if key is None else fingerprint(load_public_key_pem(key.public_key_pem.encode("ascii")))
        if key is None or (key.site, key.status) != derived_retired.get(fp) or pem_fp != fp:
            problems.append(f"retired key {fp}: the retired keys table differs from the audit log")
    return problems


def _approval_problems(session: Session, rows: list[AuditRow]) -> list[str]:
    derived = Counter(
        (*row.subject.rsplit("/", 1), _DECISIONS[row.action], json.loads(row.details)["bundle_digest"])
        for row in rows
        if row.action in _DECISIONS
    )
    table = Counter(
        (r.model_name, r.version, r.decision, r.bundle_digest) for r in session.scalars(select(ApprovalRow))
    )
    missing = [
        f"{n}/{v} {d} (audited, row missing)"
        for (n, v, d, _), c in (derived - table).items()
        for _ in range(c)
    ]
    extra = [
        f"{n}/{v} {d} (row without audit entry)"
        for (n, v, d, _), c in (table - derived).items()
        for _ in range(c)
    ]
    return [f"approval decision {item}" for item in sorted(missing + extra)]


def refuse_trust_problems(problems: list[str], *, hint: str) -> None:
    """Raise :class:`ServingStateError` with the number of ``problems`` and the first, if any."""
    if problems:
        raise ServingStateError(
            f"the registry's trust state fails its audit ({len(problems)} problem(s)): {problems[0]}",
            hint=hint,
        )


def trust_problems(session: Session, central_key_pem: bytes) -> list[str]:
    """Every disagreement between the trust tables, the audit chain and its signed checkpoints."""
    report = audit.verify_chain(session)
    if not report.ok:
        return [f"the audit log is broken at entry {report.broken_seq}: {report.reason}"]
    rows = list(session.scalars(select(AuditRow).order_by(AuditRow.seq)))
    return (
        _checkpoint_problems(rows, central_key_pem)
        + _site_problems(session, rows)
        + _approval_problems(session, rows)
    )

"""Review of published versions by the central team: approve, reject, revoke, promote, verify.

Built on :class:`registry.stores.RegistryStores` (the two stores and their lookups);
:class:`registry.service.Registry` adds setup, sites, publishing and the hub's API on top.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gsco_common.errors import PolicyError, RegistryError, ServingStateError, SignatureError
from gsco_common.ids import version_key
from gsco_common.keys import load_private_key, passphrase_from_env_or_prompt, public_pem
from registry.bundle.card import Card
from registry.bundle.layout import APPROVAL_SIG, bundle_digest, model_content_digest
from registry.bundle.signing import sign_bundle, verify_bundle
from registry.policy.checks import BundleUnderReview, CheckResult, run_checks
from registry.policy.policy import Policy, load_policy
from registry.revocation import lift_model_digest, revoke_model_digest, revoked_model_digests
from registry.serving_state import ServedVersion, issue_statement
from registry.store import audit, catalog
from registry.store.catalog import SiteInfo, TaskInfo
from registry.store.models import APPROVED, PENDING, REJECTED, REVOKED, VersionRef
from registry.store.tables import ApprovalRow
from registry.stores import RegistryStores
from registry.trust import verify_site_signature
from registry.trust_audit import refuse_trust_problems, sign_checkpoint

_ACTIONS = {APPROVED: "model.approve", REJECTED: "model.reject", REVOKED: "model.revoke"}


def _audit(session: Session, reviewer: str, action: str, ref: VersionRef, details: dict[str, Any]) -> None:
    """One audit entry by ``reviewer`` about the version ``ref``, in the caller's transaction."""
    subject = version_key(ref.name, ref.version)
    audit.append(session, actor=f"reviewer:{reviewer}", action=action, subject=subject, details=details)


@dataclass(frozen=True)
class Verification:
    """``gsco-registry verify``: every trust condition and the verdict."""

    ref: VersionRef
    checks: dict[str, str] = field(default_factory=dict)

    @property
    def approved(self) -> bool:
        return all(value == "ok" for value in self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        return {**self.ref.to_dict(), "approved": self.approved, "checks": self.checks}


class Review(RegistryStores):
    """Approve, reject, revoke, promote and verify versions (see :class:`registry.service.Registry`)."""

    def _site_for(self, ref: VersionRef) -> SiteInfo | None:
        with self.tables.session() as session:
            return catalog.site_by_fingerprint(session, ref.site_fingerprint)

    def _task_for(self, ref: VersionRef) -> TaskInfo:
        with self.tables.session() as session:
            return catalog.get_task(session, ref.task)

    def approve(
        self, name: str, version: str, *, reviewer: str, note: str = "", policy: Policy | None = None
    ) -> tuple[VersionRef, list[CheckResult]]:
        """Run the policy; on pass sign with the central key, set the alias, tag and audit.

        Raises :class:`PolicyError` listing every failing check (the refusal is audited too).
        """
        policy = policy or load_policy()
        ref = self.version(name, version)
        if ref.status != PENDING:
            raise RegistryError(
                f"{name} version {version} is {ref.status or 'untagged'}; only pending ones can be approved",
                hint="publish a new bundle to get a new version",
            )
        with tempfile.TemporaryDirectory(prefix="gsco-review-") as tmp:
            bundle = self.models.download(ref, Path(tmp) / "bundle")
            self._refuse_revoked_model(ref, bundle, reviewer)
            results = run_checks(BundleUnderReview(bundle, self._task_for(ref), self._site_for(ref)), policy)
            failures = [r for r in results if r.failed]
            if failures:
                with self.tables.session() as session:
                    _audit(
                        session,
                        reviewer,
                        "model.approve_refused",
                        ref,
                        {
                            "failed": [r.name for r in failures],
                            "problems": [r.line() for r in failures],
                        },
                    )
                raise PolicyError(
                    f"{name} version {version} fails {len(failures)} approval check(s)",
                    [r.line() for r in failures],
                    hint="reject it with `gsco-registry reject`, or ask the site for a new bundle",
                )
            key = load_private_key(
                self.config.approval_key_path, passphrase_from_env_or_prompt(confirm=False)
            )
            sig = bundle / APPROVAL_SIG
            sign_bundle(bundle, key, sig)
            verify_bundle(bundle, public_pem(key.public_key()), sig)
            self.models.add_bundle_file(ref, sig)
            card = Card.read(bundle)  # the signed card, not the MLflow tags, says task and site
            served = ServedVersion(ref.name, ref.version, bundle_digest(bundle), card.key_fingerprint)
        self.models.set_tags(ref, {"status": APPROVED, "approved_by": reviewer})
        self.models.set_approved_alias(ref)
        self._record(ref, APPROVED, reviewer, note, [r.to_dict() for r in results])
        with self.tables.session() as session:
            issue_statement(session, key, card.task_id, add=served, actor=f"reviewer:{reviewer}")
            sign_checkpoint(session, key, actor=f"reviewer:{reviewer}")
        return self.version(name, version), results

    def reject(self, name: str, version: str, *, reason: str, reviewer: str) -> VersionRef:
        ref = self.version(name, version)
        if ref.status != PENDING:
            raise RegistryError(
                f"{name} version {version} is {ref.status or 'untagged'}; only pending ones can be rejected",
                hint="use `gsco-registry revoke` for an approved version",
            )
        self.models.clear_approved_alias(ref)
        self.models.set_tags(ref, {"status": REJECTED})
        self._record(ref, REJECTED, reviewer, reason)
        return self.version(name, version)

    def revoke(self, name: str, version: str, *, reason: str, reviewer: str) -> VersionRef:
        """Withdraw a version: status revoked, alias removed, digest on the hubs' revocation list."""
        ref = self.version(name, version)
        if ref.status in (REVOKED, REJECTED):
            raise RegistryError(f"{name} version {version} is already {ref.status}")
        key = load_private_key(self.config.approval_key_path, passphrase_from_env_or_prompt(confirm=False))
        with tempfile.TemporaryDirectory(prefix="gsco-revoke-") as tmp:
            model_digest = model_content_digest(self.models.download(ref, Path(tmp) / "bundle"))
        self.models.clear_approved_alias(ref)
        self.models.set_tags(ref, {"status": REVOKED})
        self._record(ref, REVOKED, reviewer, reason)
        with self.tables.session() as session:
            revoke_model_digest(
                session, model_digest, actor=f"reviewer:{reviewer}", subject=version_key(name, version)
            )
            remove = version_key(ref.name, ref.version)
            issue_statement(session, key, ref.task, remove=remove, actor=f"reviewer:{reviewer}")
            sign_checkpoint(session, key, actor=f"reviewer:{reviewer}")
        return self.version(name, version)

    def promote(self, name: str, version: str, *, reason: str, reviewer: str) -> VersionRef:
        """Serve an earlier approved version of a model again (a rollback the central team signs).

        Moving the alias by hand is ignored by the hubs; this re-checks the version as ``verify``
        does (site and approval signatures, site key active, content not revoked), then issues the
        task's next signed approved set listing it in place of the model's other version, moves
        the alias and audits ``model.promote``.
        """
        ref = self.version(name, version)
        if ref.status != APPROVED:
            raise RegistryError(
                f"{name} version {version} is {ref.status or 'untagged'}; "
                "only approved versions can be promoted",
                hint="approve a pending version with `gsco-registry approve`",
            )
        key = load_private_key(self.config.approval_key_path, passphrase_from_env_or_prompt(confirm=False))
        with tempfile.TemporaryDirectory(prefix="gsco-promote-") as tmp:
            bundle = self.models.download(ref, Path(tmp) / "bundle")
            checks = self._verify_downloaded(ref, bundle).checks
            self._refuse_revoked_model(ref, bundle, reviewer)
            card = Card.read(bundle)
            served = ServedVersion(ref.name, ref.version, bundle_digest(bundle), card.key_fingerprint)
        failing = [f"{check}: {outcome}" for check, outcome in checks.items() if outcome != "ok"]
        failing = [line for line in failing if not line.startswith("signed_approved_set:")]
        if failing:
            raise PolicyError(
                f"{name} version {version} cannot serve again",
                failing,
                hint="publish and approve a new version",
            )
        self.models.set_approved_alias(ref)
        with self.tables.session() as session:
            _audit(
                session, reviewer, "model.promote", ref, {"bundle_digest": ref.bundle_digest, "note": reason}
            )
            issue_statement(session, key, card.task_id, add=served, actor=f"reviewer:{reviewer}")
            sign_checkpoint(session, key, actor=f"reviewer:{reviewer}")
        return self.version(name, version)

    def _refuse_revoked_model(self, ref: VersionRef, bundle: Path, reviewer: str) -> None:
        """Refuse (audited) a bundle whose ``model.onnx`` content was revoked, whatever its card."""
        model_digest = model_content_digest(bundle)
        with self.tables.session() as session:
            if model_digest not in revoked_model_digests(session):
                return
            _audit(
                session,
                reviewer,
                "model.approve_refused",
                ref,
                {"failed": ["revoked_model"], "model_digest": model_digest},
            )
        raise PolicyError(
            f"{ref.name} version {ref.version} fails 1 approval check(s)",
            [f"revoked_model: its model.onnx ({model_digest}) was revoked by the central team"],
            hint="only the central team can lift it: `gsco-registry lift-revocation MODEL_DIGEST`",
        )

    def lift_revocation(self, model_digest: str, *, reason: str, reviewer: str) -> None:
        """Let a revoked model content be approved again (audited as ``model.digest_lift``)."""
        with self.tables.session() as session:
            lift_model_digest(session, model_digest, actor=f"reviewer:{reviewer}", reason=reason)

    def _record(
        self,
        ref: VersionRef,
        decision: str,
        reviewer: str,
        note: str,
        checks: list[dict[str, str]] | None = None,
    ) -> None:
        with self.tables.session() as session:
            session.add(
                ApprovalRow(
                    model_name=ref.name,
                    version=ref.version,
                    bundle_digest=ref.bundle_digest,
                    decision=decision,
                    reviewer=reviewer,
                    note=note,
                    decided_at=datetime.now(UTC),
                )
            )
            details: dict[str, Any] = {"bundle_digest": ref.bundle_digest, "note": note}
            if checks is not None:
                details["checks"] = {c["check"]: c["status"] for c in checks}
            _audit(session, reviewer, _ACTIONS[decision], ref, details)

    def _serving_check(self, ref: VersionRef, central_key_pem: bytes) -> str:
        """Is this exact version (and digest) listed by the task's newest valid signed approved set?"""
        signed = self.serving_statement(ref.task)
        if signed is None:
            return "no signed approved set for the task"
        try:
            statement = signed.verify(central_key_pem)
        except ServingStateError as exc:
            return exc.message
        listed = {v.key: v.bundle_digest for v in statement.versions}
        key = version_key(ref.name, ref.version)
        if key not in listed:
            alias = " (the alias `approved` disagrees)" if ref.has_approved_alias else ""
            return f"not in the signed approved set{alias}"
        return "ok" if listed[key] == ref.bundle_digest else "digest differs from the signed approved set"

    def decisions(self, name: str, version: str) -> list[str]:
        with self.tables.session() as session:
            rows = session.scalars(
                select(ApprovalRow)
                .where(ApprovalRow.model_name == name, ApprovalRow.version == version)
                .order_by(ApprovalRow.id)
            )
            return [row.decision for row in rows]

    def approval_record(self, name: str, version: str) -> tuple[str, str]:
        """Who approved the version and when (ISO 8601), from its latest approval; ``("", "")`` if none."""
        with self.tables.session() as session:
            row = session.scalars(
                select(ApprovalRow)
                .where(
                    ApprovalRow.model_name == name,
                    ApprovalRow.version == version,
                    ApprovalRow.decision == APPROVED,
                )
                .order_by(ApprovalRow.id.desc())
                .limit(1)
            ).first()
            return (row.reviewer, row.decided_at.isoformat()) if row is not None else ("", "")

    def verify(self, name: str, version: str) -> Verification:
        """Check a version as a hub would, plus the registry's records; never trusts the alias."""
        ref = self.version(name, version)
        with tempfile.TemporaryDirectory(prefix="gsco-verify-") as tmp:
            return self._verify_downloaded(ref, self.models.download(ref, Path(tmp) / "bundle"))

    def _verify_downloaded(self, ref: VersionRef, bundle: Path) -> Verification:
        """:meth:`verify` on a bundle already downloaded, so a caller acts on the bytes it checked."""
        trust = self.trust_store()
        self._refuse_untrusted_state(trust.central_key_pem)
        checks: dict[str, str] = {}
        checks["digest"] = "ok" if bundle_digest(bundle) == ref.bundle_digest else "differs from the tag"
        checks["site_signature"] = _outcome(lambda: verify_site_signature(bundle, trust.site_keys))
        if (bundle / APPROVAL_SIG).is_file():
            checks["approval_signature"] = _outcome(
                lambda: verify_bundle(bundle, trust.central_key_pem, bundle / APPROVAL_SIG)
            )
        else:
            checks["approval_signature"] = "missing approval.sig"
        decisions = self.decisions(ref.name, ref.version)
        checks["approval_record"] = "ok" if decisions[-1:] == [APPROVED] else "no approval recorded"
        checks["not_revoked"] = "ok" if ref.bundle_digest not in trust.revoked_digests else "revoked"
        checks["signed_approved_set"] = self._serving_check(ref, trust.central_key_pem)
        return Verification(ref, checks)

    def _refuse_untrusted_state(self, central_key_pem: bytes) -> None:
        """Vouch for no version while the trust tables disagree with the audit log, as the hub does."""
        refuse_trust_problems(
            self.trust_problems(central_key_pem),
            hint="run `gsco-registry verify --all`; restore the registry database from backup",
        )


def _outcome(check: Any) -> str:
    try:
        check()
    except (SignatureError, RegistryError) as exc:
        return exc.message
    return "ok"

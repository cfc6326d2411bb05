"""The registry's two stores and the lookups every part of it needs.

:class:`RegistryStores` opens the MLflow model store and the registry's own tables; review
(:class:`registry.review.Review`) and the rest of :class:`registry.service.Registry` build on it.
"""

from __future__ import annotations

from sqlalchemy import select

from gsco_common.keys import load_public_key, public_pem
from registry.config import RegistryConfig
from registry.revocation import revoked_model_digests
from registry.serving_state import SignedApprovedSet, newest_statement
from registry.store import catalog
from registry.store.database import Tables
from registry.store.models import REVOKED, ModelStore, VersionRef
from registry.store.tables import ApprovalRow
from registry.trust import TrustStore
from registry.trust_audit import trust_problems


class RegistryStores:
    """The model store (MLflow) and the tables (tasks, sites, approvals, audit) of one registry."""

    def __init__(self, config: RegistryConfig, *, create: bool = False) -> None:
        self.config = config
        self.tables = Tables(config.tables_uri, create=create)
        self.models = ModelStore(config)

    def version(self, name: str, version: str) -> VersionRef:
        return self.models.get(name, version)

    def serving_statement(self, task: str) -> SignedApprovedSet | None:
        """The task's newest signed approved set, unverified (the hub checks it with its pinned key)."""
        with self.tables.session() as session:
            return newest_statement(session, task)

    def trust_store(self, central_key_pem: bytes | None = None) -> TrustStore:
        """What a hub needs to verify bundles offline.

        The central key is the one the caller pins, else ``GSCO_HOME/keys/approval.pub``; active
        site keys (current and retired, unrevoked) and revoked digests are read live from the tables.
        """
        if central_key_pem is None:
            central_key_pem = public_pem(load_public_key(self.config.approval_pub_path))
        with self.tables.session() as session:
            sites = catalog.trusted_keys(session)
            revoked = session.scalars(
                select(ApprovalRow.bundle_digest).where(ApprovalRow.decision == REVOKED)
            ).all()
            models = revoked_model_digests(session)
        return TrustStore(central_key_pem, sites, frozenset(revoked), models)

    def trust_problems(self, central_key_pem: bytes | None = None) -> list[str]:
        """Disagreements of the trust tables with the audit chain and its signed checkpoints.

        The central key is the one the caller pins, else ``GSCO_HOME/keys/approval.pub``.
        """
        pem = central_key_pem or public_pem(load_public_key(self.config.approval_pub_path))
        with self.tables.session() as session:
            return trust_problems(session, pem)

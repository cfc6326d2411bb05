"""The pool's :class:`BundleSource` over the registry's library API.

Candidates come from :meth:`registry.service.Registry.list_approved` (alias and status: never
trusted on their own); every downloaded bundle must pass :func:`registry.trust.verify_approved`
against the live trust store (enrolled active site keys, revoked digests) and the central key
pinned at construction (:func:`registry.pinning.pinned_central_key`): ``--central-key`` or the
hub home's ``keys/approval.pub``, never a key read later from the registry or the cache.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from gsco_common.errors import RegistryUnavailableError, SignatureError
from gsco_common.keys import fingerprint, load_public_key_pem
from gsco_runtime.pool.source import BundleRef, TaskState, TrustRecord
from registry.config import RegistryConfig
from registry.pinning import pinned_central_key, require_pinned
from registry.service import Registry
from registry.serving_state import SequenceGuard, SignedApprovedSet
from registry.trust import TrustStore, verify_approved
from registry.trust_audit import refuse_trust_problems


class RegistrySource:
    """Reads approved versions and bundles from the registry; verifies with its trust store."""

    def __init__(
        self, config: RegistryConfig, *, central_key_pem: bytes | None = None, hub_home: Path | None = None
    ) -> None:
        self.config = config
        self.central_key_pem = pinned_central_key(config.home, central_key_pem)
        self.guard = SequenceGuard(hub_home or config.home)
        self._registry: Registry | None = None
        self._trust: TrustStore | None = None
        self._lock = threading.Lock()

    def _open(self) -> Registry:
        if self._registry is None:
            self._registry = Registry.open(self.config)
        return self._registry

    def _drop(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    def task_state(self, task_id: str) -> TaskState:
        with self._lock:
            try:
                registry = self._open()
                registry.ping()
                problems = registry.trust_problems(self.central_key_pem)
                signed = registry.serving_statement(task_id)
                registered = registry.has_task(task_id)
                self._trust = registry.trust_store(self.central_key_pem)
            except RegistryUnavailableError:
                self._drop()
                raise
        refuse_trust_problems(
            problems, hint="run `gsco-registry verify --all`; the hub keeps serving its last verified set"
        )
        revoked = self._trust.revoked_digests
        admitted = tuple(ref for ref in self._admit(task_id, signed) if ref.bundle_digest not in revoked)
        approved = self._with_approval_records(admitted)
        return TaskState(
            approved=approved,
            revoked_digests=frozenset(revoked),
            revoked_models=self._trust.revoked_models,
            trusted_sites=frozenset(self._trust.site_keys),
            statement=None if signed is None else signed.to_dict(),
            registered=registered,
        )

    def _admit(self, task_id: str, signed: SignedApprovedSet | None) -> tuple[BundleRef, ...]:
        """The versions of a statement signed by the pinned key and not older than any seen.

        MLflow aliases play no part: the signed approved set alone says what serves. Raises
        :class:`ServingStateError` (forged, rolled back); the pool then keeps its last set.
        """
        statement = None if signed is None else signed.verify(self.central_key_pem)
        admitted = self.guard.admit(task_id, statement)
        versions = () if admitted is None else admitted.versions
        return tuple(
            BundleRef(task_id, v.name, v.version, v.site_fingerprint, bundle_digest=v.bundle_digest)
            for v in versions
        )

    def _with_approval_records(self, refs: tuple[BundleRef, ...]) -> tuple[BundleRef, ...]:
        """The refs with the registry's approval record (who approved, when) for the hub's reports."""
        with self._lock:
            registry = self._open()
            records = {ref: registry.approval_record(ref.name, ref.version) for ref in refs}
        return tuple(replace(ref, approved_by=records[ref][0], approved_at=records[ref][1]) for ref in refs)

    def admit_cached(self, task_id: str, statement: dict[str, Any] | None) -> tuple[BundleRef, ...]:
        """The versions of the cached statement, checked exactly as a live one."""
        return self._admit(task_id, None if statement is None else SignedApprovedSet.from_dict(statement))

    def fetch(self, ref: BundleRef, dest: Path) -> None:
        with self._lock:
            self._open().download_bundle(ref.name, ref.version, dest)

    def verify(self, ref: BundleRef, bundle_dir: Path) -> TrustRecord:
        if self._trust is None:
            raise RegistryUnavailableError("the registry's trust store has not been read yet")
        verified = verify_approved(bundle_dir, self._trust)
        if verified.card.task_id != ref.task_id:
            raise SignatureError(f"{ref.key} is listed under task {ref.task_id!r}; its card names another")
        _require_listed_digest(ref, verified.digest)
        return TrustRecord(
            site_public_pem=self._trust.site_keys[verified.site_fingerprint].decode("ascii"),
            approval_public_pem=self._trust.central_key_pem.decode("ascii"),
        )

    def verify_cached(self, bundle_dir: Path, trust: TrustRecord, ref: BundleRef | None = None) -> None:
        """Re-check a cached copy of a bundle.

        With the trust store of the last successful read of the registry, even while the registry is
        down now (the revoked sites and digests it knew stay refused), else, before any read,
        offline with the site key it verified against before and the pinned central key. A record
        that names another central key is refused (:class:`SignatureError`): the cache folder was
        written by someone else.
        """
        require_pinned(
            self.central_key_pem, trust.approval_public_pem.encode("ascii"), "bundle cache's trust.json"
        )
        if self._trust is not None:
            verified = verify_approved(bundle_dir, self._trust)
        else:
            site_pem = trust.site_public_pem.encode("ascii")
            offline = TrustStore(self.central_key_pem, {fingerprint(load_public_key_pem(site_pem)): site_pem})
            verified = verify_approved(bundle_dir, offline)
        if ref is not None:
            _require_listed_digest(ref, verified.digest)

    def close(self) -> None:
        with self._lock:
            self._drop()


def _require_listed_digest(ref: BundleRef, digest: str) -> None:
    """Refuse a bundle (even a validly signed older one) whose digest is not the one the set lists."""
    if ref.bundle_digest and digest != ref.bundle_digest:
        raise SignatureError(f"{ref.key} is not the bundle the signed approved set lists (digest differs)")

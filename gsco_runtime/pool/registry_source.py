"""The pool's :class:`BundleSource` over the registry's library API.

Candidates come from :meth:`registry.service.Registry.list_approved` (alias and status: never
trusted on their own); every downloaded bundle must pass :func:`registry.trust.verify_approved`
against the live trust store (central key, enrolled active site keys, revoked digests). The
central key is pinned by the hub when given, else read from the registry home.
"""

from __future__ import annotations

import threading
from pathlib import Path

from gsco_runtime.pool.source import BundleRef, TaskState, TrustRecord
from registry.config import RegistryConfig
from registry.errors import RegistryUnavailableError, SignatureError
from registry.keys import fingerprint, load_public_key_pem
from registry.service import Registry
from registry.trust import TrustStore, verify_approved


class RegistrySource:
    """Reads approved versions and bundles from the registry; verifies with its trust store."""

    def __init__(self, config: RegistryConfig, *, central_key_pem: bytes | None = None) -> None:
        self.config = config
        self.central_key_pem = central_key_pem
        self._registry: Registry | None = None
        self._trust: TrustStore | None = None
        self._live = False
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
                candidates = registry.list_approved(task_id)
                self._trust = registry.trust_store(self.central_key_pem)
                self._live = True
            except RegistryUnavailableError:
                self._live = False
                self._drop()
                raise
        revoked = self._trust.revoked_digests
        approved = tuple(
            BundleRef(task_id, ref.name, ref.version, ref.site_fingerprint)
            for ref in candidates
            if ref.bundle_digest not in revoked
        )
        return TaskState(
            approved=approved,
            revoked_digests=frozenset(revoked),
            trusted_sites=frozenset(self._trust.site_keys),
        )

    def fetch(self, ref: BundleRef, dest: Path) -> None:
        with self._lock:
            self._open().download_bundle(ref.name, ref.version, dest)

    def verify(self, ref: BundleRef, bundle_dir: Path) -> TrustRecord:
        if self._trust is None:
            raise RegistryUnavailableError("the registry's trust store has not been read yet")
        verified = verify_approved(bundle_dir, self._trust)
        if verified.card.task_id != ref.task_id:
            raise SignatureError(f"{ref.key} is listed under task {ref.task_id!r}; its card names another")
        return TrustRecord(
            site_public_pem=self._trust.site_keys[verified.site_fingerprint].decode("ascii"),
            approval_public_pem=self._trust.central_key_pem.decode("ascii"),
        )

    def verify_cached(self, bundle_dir: Path, trust: TrustRecord) -> None:
        """Re-check a cached copy of a bundle.

        With the live trust store when the registry answered last time, else offline with the keys
        it verified against before (a pinned central key wins over the recorded one).
        """
        if self._live and self._trust is not None:
            verify_approved(bundle_dir, self._trust)
            return
        site_pem = trust.site_public_pem.encode("ascii")
        central = self.central_key_pem or trust.approval_public_pem.encode("ascii")
        offline = TrustStore(central, {fingerprint(load_public_key_pem(site_pem)): site_pem})
        verify_approved(bundle_dir, offline)

    def close(self) -> None:
        with self._lock:
            self._drop()

"""Where approved bundles come from: the contract between the pool and the registry.

The pool only needs four operations. :mod:`gsco_runtime.pool.registry_source` implements them
over the registry's library API; nothing else in the runtime touches the registry directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gsco_common.ids import version_key


@dataclass(frozen=True)
class BundleRef:
    """One registered version: model name, version, task, site, approval and listed bundle digest.

    ``approved_by`` / ``approved_at`` are the registry's approval record (reviewer, ISO time), carried
    so that the hub's reports can say who approved the model and when. ``bundle_digest`` is the one
    the signed approved set lists (empty when unknown); a bundle with another digest is refused
    even when its signatures verify.
    """

    task_id: str
    name: str
    version: str
    site_fingerprint: str = ""
    approved_by: str = ""
    approved_at: str = ""
    bundle_digest: str = ""

    @property
    def key(self) -> str:
        return version_key(self.name, self.version)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BundleRef:
        return cls(
            task_id=str(data["task_id"]),
            name=str(data["name"]),
            version=str(data["version"]),
            site_fingerprint=str(data.get("site_fingerprint", "")),
            approved_by=str(data.get("approved_by", "")),
            approved_at=str(data.get("approved_at", "")),
            bundle_digest=str(data.get("bundle_digest", "")),
        )


@dataclass(frozen=True)
class TaskState:
    """What the registry says about a task now.

    ``approved``: candidate versions; ``revoked_digests``: bundles withdrawn by the central team;
    ``revoked_models``: ``model.onnx`` contents withdrawn (under whatever name carries them);
    ``trusted_sites``: fingerprints of enrolled, active site keys (None when unknown);
    ``statement``: the signed approved set the candidates come from, kept in the cache so an
    offline start serves only what a verified statement lists; ``registered``: whether the
    registry knows the task at all (a typo has no specialists, but needs another hint than a
    task with none approved yet). A loaded version whose digest is revoked or whose site key is
    no longer trusted leaves the pool.
    """

    approved: tuple[BundleRef, ...]
    revoked_digests: frozenset[str] = field(default_factory=frozenset)
    trusted_sites: frozenset[str] | None = None
    statement: dict[str, Any] | None = None
    revoked_models: frozenset[str] = field(default_factory=frozenset)
    registered: bool = True

    def withdrawn(self, digest: str, content_digest: str, site_fingerprint: str) -> bool:
        untrusted = self.trusted_sites is not None and site_fingerprint not in self.trusted_sites
        return digest in self.revoked_digests or content_digest in self.revoked_models or untrusted


@dataclass(frozen=True)
class TrustRecord:
    """Public keys a bundle verified against, kept with the cached copy to re-verify it offline."""

    site_public_pem: str
    approval_public_pem: str


class BundleSource(Protocol):
    """The registry as seen by the specialist pool."""

    def task_state(self, task_id: str) -> TaskState:
        """Approved and revoked versions; raises ``RegistryUnavailableError`` when unreachable."""
        ...

    def fetch(self, ref: BundleRef, dest: Path) -> None:
        """Download the bundle's files (model, card, signatures) into the empty folder ``dest``."""
        ...

    def verify(self, ref: BundleRef, bundle_dir: Path) -> TrustRecord:
        """Check site and approval signatures against enrolled, active keys; ``SignatureError`` if not."""
        ...

    def verify_cached(self, bundle_dir: Path, trust: TrustRecord, ref: BundleRef | None = None) -> None:
        """Re-check a cached bundle's signatures offline (and its digest against ``ref``'s)."""
        ...

    def admit_cached(self, task_id: str, statement: dict[str, Any] | None) -> tuple[BundleRef, ...]:
        """The versions a cached signed statement lists, if it verifies and is not a rollback."""
        ...

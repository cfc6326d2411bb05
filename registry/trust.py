"""The hub's trust decision: a bundle is served only when both signatures verify.

:class:`TrustStore` holds what a hub needs to decide offline: the central approval public key,
the public keys of enrolled and *active* sites, and the digests of revoked versions. The registry
exports it (``gsco-registry trust export``, :meth:`registry.service.Registry.trust_store`);
:func:`verify_approved` checks a downloaded bundle against it. An MLflow alias or tag is never
part of the decision: anyone who may create versions may also set those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gsco_common.errors import KeyMaterialError, SignatureError
from gsco_common.keys import fingerprint, load_public_key_pem
from registry.bundle.card import Card
from registry.bundle.layout import (
    APPROVAL_SIG,
    SITE_SIG,
    bundle_digest,
    model_content_digest,
    require_bundle_files,
)
from registry.bundle.signing import verify_bundle

TRUST_FORMAT = "gsco-trust-1"


@dataclass(frozen=True)
class TrustStore:
    """Central key + active site keys (by fingerprint) + revoked bundle and model-content digests.

    ``revoked_models`` are ``model.onnx`` digests: a revoked model's weights stay withdrawn under
    any other name, card or version that carries them, also one approved before the revocation.
    """

    central_key_pem: bytes
    site_keys: dict[str, bytes] = field(default_factory=dict)
    revoked_digests: frozenset[str] = frozenset()
    revoked_models: frozenset[str] = frozenset()

    @property
    def central_fingerprint(self) -> str:
        return fingerprint(load_public_key_pem(self.central_key_pem))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TRUST_FORMAT,
            "central_key": self.central_key_pem.decode("ascii"),
            "sites": {fp: pem.decode("ascii") for fp, pem in sorted(self.site_keys.items())},
            "revoked_digests": sorted(self.revoked_digests),
            "revoked_models": sorted(self.revoked_models),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrustStore:
        if not isinstance(data, dict) or data.get("format") != TRUST_FORMAT:
            raise KeyMaterialError(f"not a GSCo trust store (expected format {TRUST_FORMAT})")
        try:
            sites = {fp: pem.encode("ascii") for fp, pem in data.get("sites", {}).items()}
            central = data["central_key"].encode("ascii")
            revoked = frozenset(str(digest) for digest in data.get("revoked_digests", []))
            models = frozenset(str(digest) for digest in data.get("revoked_models", []))
        except (KeyError, AttributeError, TypeError, UnicodeEncodeError) as exc:
            raise KeyMaterialError(f"the trust store is malformed ({exc.__class__.__name__})") from None
        for fp, pem in sites.items():
            if fingerprint(load_public_key_pem(pem)) != fp:
                raise KeyMaterialError("a site key in the trust store does not match its fingerprint")
        load_public_key_pem(central)
        return cls(central, sites, revoked, models)

    def write(self, path: Path) -> None:
        try:
            path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise KeyMaterialError(
                f"cannot write the trust store {path.name} ({exc.__class__.__name__})",
                hint="name a file in an existing folder",
            ) from None

    @classmethod
    def read(cls, path: Path) -> TrustStore:
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise KeyMaterialError(
                f"cannot read the trust store {path.name} ({exc.__class__.__name__})"
            ) from None


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle folder whose site and approval signatures both verified."""

    path: Path
    card: Card
    digest: str
    site_fingerprint: str


def verify_site_signature(bundle_dir: Path, site_keys: dict[str, bytes]) -> Card:
    """Check ``site.sig`` against the key the card names, which must be in ``site_keys``."""
    require_bundle_files(bundle_dir)
    card = Card.read(bundle_dir)
    pem = site_keys.get(card.key_fingerprint)
    if pem is None:
        raise SignatureError(
            "the bundle's site key is not enrolled or was revoked",
            hint="only bundles of enrolled, active sites are trusted",
        )
    verify_bundle(bundle_dir, pem, bundle_dir / SITE_SIG)
    return card


def verify_approved(bundle_dir: Path, trust: TrustStore) -> VerifiedBundle:
    """Raise :class:`SignatureError` unless the bundle is approved and untampered.

    Checks, in order: all files present, card valid, ``site.sig`` by an active enrolled site key
    (the one the card names), ``approval.sig`` by the central key, digest not revoked, model
    content not revoked.
    """
    card = verify_site_signature(bundle_dir, trust.site_keys)
    if not (bundle_dir / APPROVAL_SIG).is_file():
        raise SignatureError("the bundle has no approval.sig: the central team has not approved it")
    verify_bundle(bundle_dir, trust.central_key_pem, bundle_dir / APPROVAL_SIG)
    digest = bundle_digest(bundle_dir)
    if digest in trust.revoked_digests:
        raise SignatureError("this bundle version was revoked by the central team")
    if model_content_digest(bundle_dir) in trust.revoked_models:
        raise SignatureError(
            "its model.onnx was revoked by the central team (under another name or version)",
            hint="`gsco-registry lift-revocation` lifts a content revocation made by mistake",
        )
    return VerifiedBundle(bundle_dir, card, digest, card.key_fingerprint)

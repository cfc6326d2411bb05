"""The hub's trust store: what it holds, how it round-trips, what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gsco_common.errors import KeyMaterialError, SignatureError
from gsco_common.keys import fingerprint
from registry.bundle.layout import bundle_digest
from registry.bundle.signing import sign_bundle
from registry.trust import TrustStore, verify_approved
from tests.registry.bundles import make_bundle
from tests.registry.conftest import LABELS, SiteKey


@pytest.fixture
def approved(tmp_path: Path, site_keys: dict[str, SiteKey]) -> Path:
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS)
    sign_bundle(folder, site_keys["b"].private, folder / "approval.sig")
    return folder


def store(site_keys: dict[str, SiteKey], **kwargs: object) -> TrustStore:
    a = site_keys["a"]
    return TrustStore(
        site_keys["b"].public_pem, {fingerprint(a.private.public_key()): a.public_pem}, **kwargs
    )


def test_verify_approved_accepts_and_round_trips(
    approved: Path, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    trust = store(site_keys)
    trust.write(tmp_path / "trust.json")
    loaded = TrustStore.read(tmp_path / "trust.json")
    assert loaded == trust
    verified = verify_approved(approved, loaded)
    assert verified.digest == bundle_digest(approved) and verified.card.labels == tuple(LABELS)


def test_verify_approved_refusals(approved: Path, site_keys: dict[str, SiteKey]) -> None:
    with pytest.raises(SignatureError, match="revoked by the central team"):
        verify_approved(approved, store(site_keys, revoked_digests=frozenset({bundle_digest(approved)})))
    with pytest.raises(SignatureError, match="not enrolled or was revoked"):
        verify_approved(approved, TrustStore(site_keys["b"].public_pem, {}))
    with pytest.raises(SignatureError, match="approval.sig does not verify"):
        verify_approved(approved, TrustStore(site_keys["a"].public_pem, store(site_keys).site_keys))
    (approved / "approval.sig").unlink()
    with pytest.raises(SignatureError, match="no approval.sig"):
        verify_approved(approved, store(site_keys))


def test_malformed_trust_stores_are_refused(site_keys: dict[str, SiteKey], tmp_path: Path) -> None:
    data = store(site_keys).to_dict()
    data["sites"] = {"sha256:" + "0" * 64: site_keys["a"].public_pem.decode()}
    with pytest.raises(KeyMaterialError, match="does not match its fingerprint"):
        TrustStore.from_dict(data)
    with pytest.raises(KeyMaterialError, match="not a GSCo trust store"):
        TrustStore.from_dict({"format": "other"})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(KeyMaterialError, match="cannot read"):
        TrustStore.read(tmp_path / "bad.json")
    assert json.loads(json.dumps(store(site_keys).to_dict()))["format"] == "gsco-trust-1"

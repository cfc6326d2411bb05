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


def test_trust_store_document_holds_exactly_its_keys_and_revocations(
    site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    a, stranger = site_keys["a"], site_keys["stranger"]
    sites = {fingerprint(k.private.public_key()): k.public_pem for k in (stranger, a)}
    trust = TrustStore(
        site_keys["b"].public_pem, sites, frozenset({"sha256:2", "sha256:1"}), frozenset({"sha256:m"})
    )
    assert trust.to_dict() == {
        "format": "gsco-trust-1",
        "central_key": site_keys["b"].public_pem.decode("ascii"),
        "sites": {fp: sites[fp].decode("ascii") for fp in sorted(sites)},
        "revoked_digests": ["sha256:1", "sha256:2"],
        "revoked_models": ["sha256:m"],
    }
    assert list(trust.to_dict()["sites"]) == sorted(sites)
    trust.write(tmp_path / "trust.json")
    assert (tmp_path / "trust.json").read_text() == json.dumps(trust.to_dict(), indent=2) + "\n"
    assert TrustStore.read(tmp_path / "trust.json") == trust
    assert trust.central_fingerprint == fingerprint(site_keys["b"].private.public_key())


def test_a_trust_store_may_list_no_sites_and_no_revocations(site_keys: dict[str, SiteKey]) -> None:
    central = site_keys["b"].public_pem
    loaded = TrustStore.from_dict({"format": "gsco-trust-1", "central_key": central.decode("ascii")})
    assert loaded == TrustStore(central, {}, frozenset())


def test_a_trust_store_with_a_broken_central_key_is_refused(site_keys: dict[str, SiteKey]) -> None:
    data = store(site_keys).to_dict()
    data["central_key"] = "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n"
    with pytest.raises(KeyMaterialError):
        TrustStore.from_dict(data)


def test_verified_bundle_names_the_folder_and_the_signing_site(
    approved: Path, site_keys: dict[str, SiteKey]
) -> None:
    verified = verify_approved(approved, store(site_keys))
    assert verified.path == approved
    assert verified.site_fingerprint == fingerprint(site_keys["a"].private.public_key())
    assert verified.card.key_fingerprint == verified.site_fingerprint


def test_refusals_say_what_to_do(approved: Path, site_keys: dict[str, SiteKey], tmp_path: Path) -> None:
    with pytest.raises(SignatureError) as refused:
        verify_approved(approved, TrustStore(site_keys["b"].public_pem, {}))
    assert refused.value.message == "the bundle's site key is not enrolled or was revoked"
    assert refused.value.hint == "only bundles of enrolled, active sites are trusted"
    (tmp_path / "gone.json").write_text("[]")
    with pytest.raises(KeyMaterialError) as unreadable:
        TrustStore.read(tmp_path / "absent.json")
    assert unreadable.value.message == "cannot read the trust store absent.json (FileNotFoundError)"
    with pytest.raises(KeyMaterialError, match=r"expected format gsco-trust-1"):
        TrustStore.read(tmp_path / "gone.json")


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"format": "gsco-trust-1"}, "KeyError"),
        ({"format": "gsco-trust-1", "central_key": 42}, "AttributeError"),
        ({"format": "gsco-trust-1", "central_key": "x", "sites": ["fp"]}, "AttributeError"),
        ({"format": "gsco-trust-1", "central_key": "x", "sites": {"fp": None}}, "AttributeError"),
        ({"format": "gsco-trust-1", "central_key": "kéy"}, "UnicodeEncodeError"),
        ({"format": "gsco-trust-1", "central_key": "x", "revoked_digests": 7}, "TypeError"),
    ],
)
def test_a_malformed_trust_store_is_a_key_material_error(document: dict[str, object], reason: str) -> None:
    with pytest.raises(KeyMaterialError) as refused:
        TrustStore.from_dict(document)
    assert refused.value.message == f"the trust store is malformed ({reason})"


def test_a_trust_store_file_that_is_not_text_is_refused(tmp_path: Path) -> None:
    (tmp_path / "trust.json").write_bytes(b'{"format": "\xff"}')
    with pytest.raises(KeyMaterialError) as refused:
        TrustStore.read(tmp_path / "trust.json")
    assert refused.value.message == "cannot read the trust store trust.json (UnicodeDecodeError)"


def test_refusals_of_keys_and_unapproved_bundles_are_exact(
    approved: Path, site_keys: dict[str, SiteKey]
) -> None:
    data = store(site_keys).to_dict()
    data["sites"] = {"sha256:" + "0" * 64: site_keys["a"].public_pem.decode()}
    with pytest.raises(KeyMaterialError) as mismatch:
        TrustStore.from_dict(data)
    assert mismatch.value.message == "a site key in the trust store does not match its fingerprint"
    revoked_store = store(site_keys, revoked_digests=frozenset({bundle_digest(approved)}))
    with pytest.raises(SignatureError) as revoked:
        verify_approved(approved, revoked_store)
    assert revoked.value.message == "this bundle version was revoked by the central team"
    (approved / "approval.sig").unlink()
    with pytest.raises(SignatureError) as unapproved:
        verify_approved(approved, revoked_store)
    assert unapproved.value.message == "the bundle has no approval.sig: the central team has not approved it"

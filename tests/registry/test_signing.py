"""Bundle signatures with OpenSSF model-signing, checked with the package's own CLI too."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gsco_common.errors import KeyMaterialError, RegistryError, SignatureError
from registry.bundle.layout import bundle_digest
from registry.bundle.signing import sign_bundle, verify_bundle
from tests.registry.bundles import make_bundle
from tests.registry.conftest import LABELS, SiteKey

CLI = Path(sys.executable).with_name("model_signing")


def third_party_verify(bundle: Path, sig: Path, public_key: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "verify", "key", str(bundle), "--signature", str(sig), "--public_key", str(public_key)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def bundle(tmp_path: Path, site_keys: dict[str, SiteKey]) -> Path:
    return make_bundle(tmp_path / "bundle", site_keys["a"].private, LABELS)


def test_site_and_approval_signatures_coexist_and_both_verify(
    bundle: Path, site_keys: dict[str, SiteKey]
) -> None:
    digest = bundle_digest(bundle)
    sign_bundle(bundle, site_keys["b"].private, bundle / "approval.sig")
    verify_bundle(bundle, site_keys["a"].public_pem, bundle / "site.sig")
    verify_bundle(bundle, site_keys["b"].public_pem, bundle / "approval.sig")
    assert bundle_digest(bundle) == digest


def test_third_party_cli_accepts_then_rejects_one_changed_byte(
    bundle: Path, site_keys: dict[str, SiteKey]
) -> None:
    accepted = third_party_verify(bundle, bundle / "site.sig", site_keys["a"].public_path)
    assert accepted.returncode == 0, accepted.stderr
    data = bytearray((bundle / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle / "model.onnx").write_bytes(bytes(data))
    rejected = third_party_verify(bundle, bundle / "site.sig", site_keys["a"].public_path)
    assert rejected.returncode != 0
    with pytest.raises(SignatureError, match="changed: model.onnx"):
        verify_bundle(bundle, site_keys["a"].public_pem, bundle / "site.sig")


def test_wrong_key_added_file_and_garbage_signature_are_refused(
    bundle: Path, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    with pytest.raises(SignatureError, match="different key"):
        verify_bundle(bundle, site_keys["b"].public_pem, bundle / "site.sig")
    extra = tmp_path / "extra"
    shutil.copytree(bundle, extra)
    (extra / "notes.txt").write_text("unsigned")
    with pytest.raises(SignatureError, match="not signed"):
        verify_bundle(extra, site_keys["a"].public_pem, extra / "site.sig")
    (bundle / "site.sig").write_text("garbage")
    with pytest.raises(SignatureError, match="malformed"):
        verify_bundle(bundle, site_keys["a"].public_pem, bundle / "site.sig")
    (bundle / "site.sig").unlink()
    with pytest.raises(SignatureError, match="missing"):
        verify_bundle(bundle, site_keys["a"].public_pem, bundle / "site.sig")


def test_an_incomplete_bundle_cannot_be_signed(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "model.onnx").write_bytes(b"x")
    with pytest.raises(RegistryError, match="missing card.json"):
        sign_bundle(tmp_path / "b", site_keys["a"].private, tmp_path / "b" / "site.sig")


HINT = "the bundle was changed after signing or was signed with another key"


def _refusal(bundle: Path, pem: bytes, sig: Path) -> SignatureError:
    with pytest.raises(SignatureError) as refused:
        verify_bundle(bundle, pem, sig)
    return refused.value


def test_refusals_name_the_signature_the_reason_and_what_to_do(
    bundle: Path, site_keys: dict[str, SiteKey]
) -> None:
    other_key = _refusal(bundle, site_keys["b"].public_pem, bundle / "site.sig")
    assert (other_key.message, other_key.hint) == (
        "site.sig does not verify: signed with a different key",
        HINT,
    )
    card = json.loads((bundle / "card.json").read_text())
    (bundle / "card.json").write_text(json.dumps({**card, "task_id": "other-task"}))
    changed = _refusal(bundle, site_keys["a"].public_pem, bundle / "site.sig")
    assert (changed.message, changed.hint) == ("site.sig does not verify: changed: card.json", HINT)
    (bundle / "site.sig").unlink()
    missing = _refusal(bundle, site_keys["a"].public_pem, bundle / "site.sig")
    assert (missing.message, missing.hint) == ("signature site.sig is missing", None)


def test_a_broken_public_key_or_an_incomplete_bundle_is_refused_before_verifying(
    bundle: Path, site_keys: dict[str, SiteKey]
) -> None:
    with pytest.raises(KeyMaterialError, match="not a PEM public key"):
        verify_bundle(bundle, b"not a key", bundle / "site.sig")
    (bundle / "card.json").unlink()
    with pytest.raises(RegistryError, match="missing card.json"):
        verify_bundle(bundle, site_keys["a"].public_pem, bundle / "site.sig")


def test_a_signed_bundle_needs_no_earlier_signature(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    bundle = make_bundle(tmp_path / "bundle", site_keys["a"].private, LABELS)
    (bundle / "site.sig").unlink()
    sign_bundle(bundle, site_keys["b"].private, bundle / "approval.sig")
    verify_bundle(bundle, site_keys["b"].public_pem, bundle / "approval.sig")


def test_every_changed_file_and_other_refusals_are_named_exactly(
    bundle: Path, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    extra = tmp_path / "extra"
    shutil.copytree(bundle, extra)
    (extra / "notes.txt").write_text("unsigned")
    added = _refusal(extra, site_keys["a"].public_pem, extra / "site.sig")
    assert added.message == "site.sig does not verify: the folder holds files that were not signed"
    (bundle / "model.onnx").write_bytes((bundle / "model.onnx").read_bytes() + b"\0")
    (bundle / "card.json").write_text((bundle / "card.json").read_text() + " ")
    both = _refusal(bundle, site_keys["a"].public_pem, bundle / "site.sig")
    assert both.message == "site.sig does not verify: changed: model.onnx, card.json"
    (bundle / "site.sig").write_text("garbage")
    garbage = _refusal(bundle, site_keys["a"].public_pem, bundle / "site.sig")
    assert garbage.message == "site.sig does not verify: malformed signature"


def test_git_bookkeeping_beside_the_bundle_is_not_signed(
    tmp_path: Path, site_keys: dict[str, SiteKey]
) -> None:
    # As the third-party CLI does by default: a bundle folder kept in git still verifies.
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / ".gitignore").write_text("*.tmp\n")
    make_bundle(folder, site_keys["a"].private, LABELS)
    (folder / ".gitignore").write_text("*.log\n")
    verify_bundle(folder, site_keys["a"].public_pem, folder / "site.sig")

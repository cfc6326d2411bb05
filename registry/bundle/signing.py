"""Sign and verify bundles with OpenSSF ``model-signing`` and EC P-256 keys, offline.

The signature is a Sigstore bundle over ``model.onnx`` and ``card.json``; the signature files
(``site.sig``, ``approval.sig``) are in the ignore list recorded inside the signature, so the
third-party CLI verifies a bundle folder as published::

    model_signing verify key BUNDLE --signature BUNDLE/site.sig --public_key site.pub
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import hashing, signing, verifying

from gsco_common.errors import SignatureError
from gsco_common.keys import load_public_key_pem
from registry.bundle.layout import SIGNATURE_FILES, SIGNED_FILES, require_bundle_files


def _hashing_config() -> hashing.Config:
    return hashing.Config().set_ignored_paths(paths=list(SIGNATURE_FILES), ignore_git_paths=True)


def sign_bundle(bundle_dir: Path, private_key: ec.EllipticCurvePrivateKey, sig_path: Path) -> None:
    """Write ``sig_path``: a signature by ``private_key`` over the bundle's signed files.

    model-signing reads keys from files only; the key is handed over re-encrypted with a one-time
    random passphrase in a private temporary folder, so no clear-text key ever touches the disk.
    """
    require_bundle_files(bundle_dir, signatures=())
    one_time = secrets.token_bytes(32)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time),
    )
    with tempfile.TemporaryDirectory(prefix="gsco-sign-") as tmp:
        key_file = Path(tmp) / "key.pem"
        key_file.write_bytes(pem)
        key_file.chmod(0o600)
        config = signing.Config().set_hashing_config(_hashing_config())
        config.use_elliptic_key_signer(private_key=key_file, password=one_time)  # type: ignore[arg-type]
        config.sign(bundle_dir, sig_path)


def verify_bundle(bundle_dir: Path, public_key_pem: bytes, sig_path: Path) -> None:
    """Raise :class:`SignatureError` unless ``sig_path`` is a valid signature by that key.

    Also fails when a signed file changed, is missing, or an unsigned file was added.
    """
    load_public_key_pem(public_key_pem)
    require_bundle_files(bundle_dir, signatures=())
    if not sig_path.is_file():
        raise SignatureError(f"signature {sig_path.name} is missing")
    with tempfile.TemporaryDirectory(prefix="gsco-verify-") as tmp:
        key_file = Path(tmp) / "key.pub"
        key_file.write_bytes(public_key_pem)
        config = verifying.Config().use_elliptic_key_verifier(public_key=key_file)
        try:
            config.verify(bundle_dir, sig_path)
        except (ValueError, InvalidSignature, OSError) as exc:
            raise SignatureError(
                f"{sig_path.name} does not verify: {_reason(exc)}",
                hint="the bundle was changed after signing or was signed with another key",
            ) from None


def _reason(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, InvalidSignature) or "Key mismatch" in text:
        return "signed with a different key"
    if "Signature mismatch" in text:
        changed = [name for name in SIGNED_FILES if name in text]
        return "changed: " + ", ".join(changed) if changed else "the folder holds files that were not signed"
    return "malformed signature"

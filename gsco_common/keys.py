"""EC P-256 signing keys: generation, encrypted storage, loading and fingerprints.

Sites, the central approval authority and the hub's federation identity all use this module, so a
key written by ``site-agent init`` is read the same way by ``gsco-registry sites enroll``.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import warnings
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gsco_common.errors import KeyMaterialError

PASSPHRASE_ENV = "GSCO_KEY_PASSPHRASE"
MIN_PASSPHRASE_LENGTH = 8


def passphrase_from_env_or_prompt(*, confirm: bool, prompt: bool = True) -> bytes:
    """Return the key passphrase from ``GSCO_KEY_PASSPHRASE``, else ask on the terminal."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value is None:
        if not prompt:
            raise KeyMaterialError(f"no key passphrase: set {PASSPHRASE_ENV}")
        value = _ask("Key passphrase: ")
        if confirm and _ask("Repeat passphrase: ") != value:
            raise KeyMaterialError("the two passphrases differ")
    if len(value) < MIN_PASSPHRASE_LENGTH:
        raise KeyMaterialError(f"the key passphrase must have at least {MIN_PASSPHRASE_LENGTH} characters")
    return value.encode()


def _ask(prompt: str) -> str:
    """Prompt for a passphrase; end of input (no terminal, stdin closed: systemd) is GSCO-400.

    Without this, getpass's EOFError became click's bare ``Aborted.`` with exit code 1. Without a
    terminal getpass reads standard input (a passphrase piped in still works) and warns that it
    may echo, with a line naming its own source file: nothing is echoed there, so it is silenced.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", getpass.GetPassWarning)
            return getpass.getpass(prompt)
    except EOFError:
        raise KeyMaterialError(
            f"no key passphrase: {PASSPHRASE_ENV} is not set and there is no terminal to ask on",
            hint=f"set {PASSPHRASE_ENV}",
        ) from None


def read_key_file(path: Path, what: str) -> bytes:
    """The bytes of a key file; one that cannot be read is a :class:`KeyMaterialError` naming ``what``."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyMaterialError(
            f"{what} {path.name} cannot be read ({type(exc).__name__})",
            hint="run as the user that owns the key files, or fix their permissions",
        ) from None


def fingerprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, as ``sha256:<hex>``."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def public_pem(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_key_pair(private_path: Path, public_path: Path, passphrase: bytes) -> str:
    """Write a new EC P-256 key pair (private key encrypted, mode 0600); return its fingerprint.

    Refuses to overwrite an existing key: losing a site key orphans every bundle it signed.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    write_new_key_pair(
        private_path,
        pem,
        public_path,
        public_pem(key.public_key()),
        taken="a key already exists at {name}; refusing to overwrite it",
        hint="move it away explicitly if you really mean to rotate the key",
    )
    return fingerprint(key.public_key())


def write_new_key_pair(
    private_path: Path, private_data: bytes, public_path: Path, public_data: bytes, *, taken: str, hint: str
) -> None:
    """Write both files of a key pair, the private one created with mode 0600.

    Refuses to overwrite either file (``taken`` is the message, ``{name}`` the file's name). A pair
    that cannot be written (a file where the folder should be, no permission) is a
    :class:`KeyMaterialError` naming the path, and leaves no half of it behind.
    """
    for path in (private_path, public_path):
        if path.exists():
            raise KeyMaterialError(taken.format(name=path.name), hint=hint)
    written = False
    try:
        private_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        written = True
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_data)
        os.chmod(private_path, 0o600)
        public_path.write_bytes(public_data)
    except OSError as exc:
        if written:
            private_path.unlink(missing_ok=True)
        raise KeyMaterialError(
            f"cannot write the key pair: {exc.filename or private_path.parent} ({exc.strerror})",
            hint="it must be a folder this user can write (a file of that name is in the way?)",
        ) from None


def load_private_key(path: Path, passphrase: bytes) -> ec.EllipticCurvePrivateKey:
    if not path.is_file():
        raise KeyMaterialError(
            f"private key {path.name} not found", hint="run the matching init command first"
        )
    try:
        key = serialization.load_pem_private_key(read_key_file(path, "private key"), password=passphrase)
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(
            "cannot decrypt the private key: wrong passphrase or not a PEM key",
            hint=f"check {PASSPHRASE_ENV}",
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyMaterialError("the private key is not an EC P-256 key")
    return key


def load_public_key_pem(pem: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise KeyMaterialError("not a PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyMaterialError("the public key is not an EC P-256 key")
    return key


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    if not path.is_file():
        raise KeyMaterialError(f"public key {path.name} not found")
    return load_public_key_pem(read_key_file(path, "public key"))


def load_signing_key(private_path: Path, public_path: Path) -> ec.EllipticCurvePrivateKey:
    """The private key at ``private_path``, checked to be the pair of the public key at ``public_path``.

    The passphrase comes from the environment or a prompt. Signing with a key whose published
    public key is another one would make every signature fail verification later.
    """
    public_key = load_public_key(public_path)
    key = load_private_key(private_path, passphrase_from_env_or_prompt(confirm=False))
    if fingerprint(key.public_key()) != fingerprint(public_key):
        raise KeyMaterialError(
            f"{private_path.name} and {public_path.name} are not a pair",
            hint="restore the key files",
        )
    return key

"""The central approval key a hub trusts, pinned at install and never taken from the data it checks.

A hub verifies approvals against exactly one public key: the one given with ``--central-key``, or
else ``keys/approval.pub`` in the hub's own home. It is read once, when the hub's bundle source is
built. A key found in the registry's tables or in the hub's bundle cache (``trust.json``) is only
*compared* with the pinned one: anyone who can write those stores could otherwise swap the key
and inject a model of their own.
"""

from __future__ import annotations

from pathlib import Path

from gsco_common.errors import KeyMaterialError, SignatureError
from gsco_common.keys import fingerprint, load_public_key_pem, read_key_file
from gsco_common.paths import not_there

PINNED_KEY_RELPATH = Path("keys") / "approval.pub"


def read_central_key_file(path: Path | None) -> bytes | None:
    """The PEM of the ``--central-key`` file, checked to be a public key; None without the flag."""
    if path is None:
        return None
    if not path.is_file():
        raise KeyMaterialError(f"the --central-key file {not_there(path, 'file')}")
    pem = read_key_file(path, "the --central-key file")
    load_public_key_pem(pem)
    return pem


def pinned_central_key(hub_home: Path, explicit: bytes | None = None) -> bytes:
    """The pinned central key: ``explicit`` (from ``--central-key``) or the hub home's ``keys/approval.pub``.

    Raises :class:`KeyMaterialError` when neither exists, so a hub never runs without a pin.
    """
    if explicit is not None:
        load_public_key_pem(explicit)
        return explicit
    path = hub_home / PINNED_KEY_RELPATH
    if not path.is_file():
        raise KeyMaterialError(
            "no pinned central approval key",
            hint="pass --central-key FILE, or place the central team's approval.pub in the hub home's keys/",
        )
    pem = path.read_bytes()
    load_public_key_pem(pem)
    return pem


def require_pinned(pinned_pem: bytes, offered_pem: bytes, where: str) -> None:
    """Refuse trust material (``where``: which store offered it) that names another central key."""
    offered = fingerprint(load_public_key_pem(offered_pem))
    if offered != fingerprint(load_public_key_pem(pinned_pem)):
        raise SignatureError(
            f"the {where} names a central approval key other than the pinned one; refused",
            hint="someone changed that store; the hub keeps serving what it verified before",
        )

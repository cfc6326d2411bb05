"""Rotating the site's bundle-signing key (``site-agent rotate-key``).

The new key replaces ``keys/site.key`` / ``keys/site.pub``; the old pair moves to
``keys/retired/`` under its fingerprint, never deleted by this tool: the central team enrolls the
new public key with ``gsco-registry sites rotate`` and bundles the old key signed stay trusted
until it revokes that key. Destroy the retired private key once the rotation is confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gsco_common.errors import KeyMaterialError
from gsco_common.keys import fingerprint, generate_key_pair, load_public_key_pem
from site_agent.config import site_key_paths

RETIRED_DIR = "retired"


@dataclass(frozen=True)
class Rotation:
    old_fingerprint: str
    new_fingerprint: str
    retired_private: Path
    public_key: Path


def rotate_signing_key(site_dir: Path, passphrase: bytes) -> Rotation:
    """Retire the current key pair and write a new one encrypted with ``passphrase``."""
    private, public = site_key_paths(site_dir)
    if not (private.is_file() and public.is_file()):
        raise KeyMaterialError("this site folder has no signing key to rotate", hint="run `site-agent init`")
    old_fp = fingerprint(load_public_key_pem(public.read_bytes()))
    retired = private.parent / RETIRED_DIR
    stem = old_fp.removeprefix("sha256:")[:16]
    moved = (retired / f"site-{stem}.key", retired / f"site-{stem}.pub")
    if any(path.exists() for path in moved):
        raise KeyMaterialError(f"a retired key {moved[0].name} already exists; refusing to overwrite it")
    retired.mkdir(mode=0o700, exist_ok=True)
    private.rename(moved[0])
    public.rename(moved[1])
    try:
        new_fp = generate_key_pair(private, public, passphrase)
    except BaseException:
        moved[0].rename(private)
        moved[1].rename(public)
        raise
    return Rotation(old_fp, new_fp, moved[0], public)

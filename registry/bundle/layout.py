"""File names of a specialist bundle and its content digest.

A bundle is a folder holding ``model.onnx`` and ``card.json`` (the signed content) plus the
signatures over them: ``site.sig`` from the publishing site and, after approval, ``approval.sig``
from the central team. Signatures never sign each other, so both stay in the folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gsco_common.errors import RegistryError

MODEL_FILE = "model.onnx"
CARD_FILE = "card.json"
SITE_SIG = "site.sig"
APPROVAL_SIG = "approval.sig"
SIGNED_FILES = (MODEL_FILE, CARD_FILE)
SIGNATURE_FILES = (SITE_SIG, APPROVAL_SIG)


def require_bundle_files(bundle_dir: Path, *, signatures: tuple[str, ...] = (SITE_SIG,)) -> None:
    """Refuse a folder that lacks a signed file or one of the given signatures."""
    if not bundle_dir.is_dir():
        raise RegistryError("the bundle folder does not exist", hint="run `site-agent export RUN_DIR` first")
    missing = [name for name in (*SIGNED_FILES, *signatures) if not (bundle_dir / name).is_file()]
    if missing:
        raise RegistryError(
            f"the bundle is incomplete: missing {', '.join(missing)}",
            hint="re-run `site-agent export RUN_DIR`",
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_content_digest(bundle_dir: Path) -> str:
    """``sha256:<hex>`` of the bundle's ``model.onnx``: what a model revocation withdraws."""
    return "sha256:" + file_sha256(bundle_dir / MODEL_FILE)


def bundle_digest(bundle_dir: Path) -> str:
    """``sha256:<hex>`` over the signed files (names and contents), independent of signatures.

    The registry uses it to make publishing idempotent and the hub to key its caches.
    """
    outer = hashlib.sha256()
    for name in SIGNED_FILES:
        outer.update(f"{name}\0{file_sha256(bundle_dir / name)}\n".encode())
    return "sha256:" + outer.hexdigest()

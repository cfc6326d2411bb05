"""Which data a model trained on, and which data a case library holds, as one digest each.

A site's card records the digest of its training set *as a whole*: the data source's content
digest, the split the training images were drawn from and a description of the selection
(``"all"``, or a shard), hashed together. The hub's ``cases import`` records the same digest for
what it imports, so the consensus arbiter can refuse to calibrate on a library that a served
specialist trained on. Nothing per image is recorded (that would itself leak membership) and no
path enters the digest: only file contents do. A federated model's card lists each site's
training-set digest (computed at the site, sent as a digest only) and records their
:func:`combined_digest` as its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

ALL = "all"
_CHUNK = 1 << 20


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_digest(path: Path) -> str:
    """SHA-256 of a data file's bytes; for a folder, of its files' sorted content digests (no names)."""
    if path.is_file():
        return _file_digest(path)
    digest = hashlib.sha256()
    for item in sorted(_file_digest(file) for file in path.rglob("*") if file.is_file()):
        digest.update(item.encode())
    return digest.hexdigest()


def data_digest(content: str, split: str, selection: str = ALL) -> str:
    """The digest of a data set as a whole: content digest, split and selection hashed together."""
    text = "\n".join(("gsco-data-v1", content, split, selection))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def combined_digest(digests: Iterable[str]) -> str:
    """One digest for several training sets taken together (a federated model's sites), order-free."""
    text = "\n".join(("gsco-data-combined-v1", *sorted(set(digests))))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def source_digest(path: Path, split: str, selection: str = ALL) -> str:
    """:func:`data_digest` of the data at ``path`` (a file or a folder)."""
    return data_digest(content_digest(path), split, selection)

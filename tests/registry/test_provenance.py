"""The training-set digest: one definition for the site's card and the hub's case library."""

from __future__ import annotations

import hashlib
from pathlib import Path

from registry.bundle.provenance import content_digest, data_digest, source_digest
from site_agent.data.config import DataConfig


def test_the_digest_has_a_known_answer_and_depends_on_split_and_selection() -> None:
    known = "sha256:2cae6448f204ae2bf5cfe6d868f80dd491c5889f1e74510816fafccfead51f30"
    assert data_digest("abc", "train") == known
    assert data_digest("abc", "train", "all") == known
    assert data_digest("abc", "val") != known
    assert data_digest("abc", "train", "shard 1/2") != known


def test_content_not_paths_enter_the_digest(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "site-data.npz", tmp_path / "b" / "other-name.npz"
    for path in (first, second):
        path.parent.mkdir()
        path.write_bytes(b"same bytes")
    assert content_digest(first) == hashlib.sha256(b"same bytes").hexdigest()
    assert source_digest(first, "train") == source_digest(second, "train")
    folder = tmp_path / "folder"
    (folder / "x").mkdir(parents=True)
    (folder / "x" / "one.png").write_bytes(b"1")
    (folder / "two.png").write_bytes(b"2")
    inner = sorted(hashlib.sha256(b).hexdigest() for b in (b"1", b"2"))
    assert content_digest(folder) == hashlib.sha256("".join(inner).encode()).hexdigest()
    second.write_bytes(b"other bytes")
    assert source_digest(first, "train") != source_digest(second, "train")


def test_a_site_records_the_digest_of_its_training_split(tmp_path: Path) -> None:
    data = tmp_path / "data.npz"
    data.write_bytes(b"npz bytes")
    digest = DataConfig(path=data).training_set_digest()
    assert digest == data_digest(hashlib.sha256(b"npz bytes").hexdigest(), "train")
    assert str(tmp_path) not in digest

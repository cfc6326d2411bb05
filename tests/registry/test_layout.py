"""The bundle layout: which files a bundle needs, and its content digest (a known answer)."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import pytest

from gsco_common.errors import RegistryError
from registry.bundle.layout import bundle_digest, file_sha256, require_bundle_files


def _folder(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "bundle"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(name.encode() * 3)
    return folder


def test_digest_covers_names_and_contents_of_the_signed_files_only(tmp_path: Path) -> None:
    model, card = b"onnx bytes", b'{"card": 1}'
    folder = _folder(tmp_path)
    (folder / "model.onnx").write_bytes(model)
    (folder / "card.json").write_bytes(card)
    inner = (
        f"model.onnx\0{hashlib.sha256(model).hexdigest()}\ncard.json\0{hashlib.sha256(card).hexdigest()}\n"
    )
    expected = "sha256:" + hashlib.sha256(inner.encode()).hexdigest()
    assert bundle_digest(folder) == expected
    (folder / "site.sig").write_text("a signature does not change the digest")
    assert bundle_digest(folder) == expected


def test_file_digest_of_a_file_larger_than_one_read(tmp_path: Path) -> None:
    data = bytes(range(256)) * (3 * 4096 + 7)  # ~3 MiB: several 1 MiB reads
    (tmp_path / "big").write_bytes(data)
    assert file_sha256(tmp_path / "big") == hashlib.sha256(data).hexdigest()


def test_missing_files_are_named_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(RegistryError) as absent:
        require_bundle_files(tmp_path / "nowhere")
    assert (absent.value.message, absent.value.hint) == (
        "the bundle folder does not exist",
        "run `site-agent export RUN_DIR` first",
    )
    folder = _folder(tmp_path, "card.json")
    with pytest.raises(RegistryError) as incomplete:
        require_bundle_files(folder)
    assert (incomplete.value.message, incomplete.value.hint) == (
        "the bundle is incomplete: missing model.onnx, site.sig",
        "re-run `site-agent export RUN_DIR`",
    )
    (folder / "model.onnx").mkdir()
    with pytest.raises(RegistryError, match="missing model.onnx, site.sig"):
        require_bundle_files(folder)


def test_signatures_required_are_the_callers_choice(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "model.onnx", "card.json")
    require_bundle_files(folder, signatures=())
    with pytest.raises(RegistryError) as unapproved:
        require_bundle_files(folder, signatures=("approval.sig",))
    assert unapproved.value.message == "the bundle is incomplete: missing approval.sig"
    (folder / "site.sig").write_text("s")
    require_bundle_files(folder)


def test_file_digest_reads_in_bounded_pieces(tmp_path: Path) -> None:
    # A model file may be hundreds of MB: it is hashed piece by piece, never read whole.
    data = bytes(range(256)) * (16 * 4096)  # 16 MiB
    (tmp_path / "big").write_bytes(data)
    tracemalloc.start()
    try:
        assert file_sha256(tmp_path / "big") == hashlib.sha256(data).hexdigest()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20

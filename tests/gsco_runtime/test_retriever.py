"""RAD's retriever: nearest library cases per specialist, its disk cache, and the merge across specialists.

The specialist is stood in for by its prediction function only (the retriever sees nothing else):
an image's embedding is its mean pixel along each image row, so which case is nearest is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from gsco_common.errors import RuntimeServiceError
from gsco_runtime.cases.library import CaseLibrary, build_library
from gsco_runtime.cases.readers import RawCases
from gsco_runtime.decision import RetrievedCase
from gsco_runtime.rad.retriever import Neighbours, Retriever, fuse_by_rank

LABELS = ("normal", "pneumonia")


class Embedder:
    """Row means as the embedding, a fixed probability; counts how often the library is embedded."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        embeddings = np.stack([image.astype(np.float32).mean(axis=1) for image in images])
        return np.full((len(images), 2), 0.5, dtype=np.float32), embeddings


def _image(index: int) -> np.ndarray:
    """8x8 images whose row profiles point in clearly different directions."""
    rng = np.random.default_rng(index)
    return rng.integers(0, 256, (8, 8), dtype=np.uint8)


def _library(n: int = 12, first: int = 0) -> CaseLibrary:
    images = [_image(first + i) for i in range(n)]
    return build_library("radtask", LABELS, RawCases(images=images, labels=np.arange(n) % 2))


def test_the_query_finds_its_own_case_first_with_similarity_one(tmp_path: Path) -> None:
    library = _library()
    embed = Embedder()
    retriever = Retriever(library, tmp_path, k=3)
    query = embed([library.images[5]])[1][0]
    found = retriever.search("model-a", embed, query)
    assert found.rows[0] == 5 and found.similarities[0] == pytest.approx(1.0, abs=1e-6)
    assert len(found.rows) == 3 and list(found.similarities) == sorted(found.similarities, reverse=True)


def test_the_index_is_cached_on_disk_per_model_and_library(tmp_path: Path) -> None:
    library = _library()
    embed = Embedder()
    first = Retriever(library, tmp_path).ensure("model-a", embed)
    again = Retriever(library, tmp_path).ensure("model-a", embed)  # a restarted hub
    assert (first.from_cache, again.from_cache, embed.calls) == (False, True, 1)
    np.testing.assert_array_equal(again.embeddings, first.embeddings)

    Retriever(library, tmp_path).ensure("model-b", embed)  # another specialist: its own index
    Retriever(_library(first=100), tmp_path).ensure("model-a", embed)  # another library
    assert embed.calls == 3


def test_leave_one_out_never_returns_the_case_itself(tmp_path: Path) -> None:
    library = _library()
    retriever = Retriever(library, tmp_path, k=4)
    rows = np.arange(len(library))
    for row, found in zip(rows, retriever.leave_one_out("model-a", Embedder(), rows), strict=True):
        assert row not in found.rows and len(found.rows) == 4


def test_retain_frees_the_indexes_of_specialists_that_left(tmp_path: Path) -> None:
    retriever = Retriever(_library(), tmp_path)
    for model in ("model-a", "model-b", "model-c"):
        retriever.ensure(model, Embedder())
    retriever.retain(["model-b"])
    assert retriever.indexes_in_memory == 1


def test_k_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeServiceError, match="retrieval k must be at least 1"):
        Retriever(_library(), tmp_path, k=0)


def test_fusion_goes_rank_by_rank_and_a_case_keeps_its_first_finder(tmp_path: Path) -> None:
    library = _library(n=6)
    retriever = Retriever(library, tmp_path, k=3)
    a = Neighbours(rows=np.array([0, 1, 2]), similarities=np.array([0.9, 0.8, 0.7]))
    b = Neighbours(rows=np.array([2, 3, 0]), similarities=np.array([0.95, 0.85, 0.9]))
    fused = fuse_by_rank([("spec-a", a), ("spec-b", b), ("spec-c", None)], retriever)
    ids = library.case_ids
    # rank 1 of a, then of b; then rank 2 of a. b's higher cosines (another embedding space) do
    # not move its cases ahead, and case 0, also found by b, stays a's.
    assert fused == (
        RetrievedCase(ids[0], "normal", 0.9, "spec-a"),
        RetrievedCase(ids[2], "normal", 0.95, "spec-b"),
        RetrievedCase(ids[1], "pneumonia", 0.8, "spec-a"),
    )
    assert fuse_by_rank([("spec-a", a)], None) == ()

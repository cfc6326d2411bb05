from __future__ import annotations

from pathlib import Path

import numpy as np

from gsco_runtime.rad.index import IndexSettings, VectorIndex, l2_normalise


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    return (centres[rng.integers(0, 20, n)] + 0.5 * rng.normal(size=(n, dim))).astype(np.float32)


def test_exact_below_threshold_returns_true_cosine_top_k(tmp_path: Path) -> None:
    vectors = _clustered(500, 16, 0)
    index = VectorIndex.build(vectors, IndexSettings(exact_threshold=1000))
    assert index.kind == "exact" and len(index) == 500
    query = vectors[7] * 3.0  # scale does not matter: cosine
    sims, ids = index.search(query, 10)
    expected = np.argsort(-(l2_normalise(vectors) @ l2_normalise(query[None])[0]))[:10]
    assert ids[0].tolist() == expected.tolist()
    assert ids[0][0] == 7 and np.isclose(sims[0][0], 1.0, atol=1e-5)
    index.save(tmp_path / "flat.faiss")
    again = VectorIndex.load(tmp_path / "flat.faiss", IndexSettings())
    assert again.kind == "exact" and again.search(query, 10)[1].tolist() == ids.tolist()


def test_hnsw_above_threshold_keeps_high_recall(tmp_path: Path) -> None:
    vectors = _clustered(3000, 32, 1)
    settings = IndexSettings(exact_threshold=1000)  # default HNSW parameters
    hnsw = VectorIndex.build(vectors, settings)
    exact = VectorIndex.build(vectors, IndexSettings(exact_threshold=10**9))
    assert hnsw.kind == "hnsw"
    queries = _clustered(50, 32, 2)
    _, approx_ids = hnsw.search(queries, 10)
    _, true_ids = exact.search(queries, 10)
    recall = np.mean([len(set(a) & set(t)) / 10 for a, t in zip(approx_ids, true_ids, strict=True)])
    print(f"HNSW recall@10 on 3000 vectors: {recall:.3f}")
    assert recall >= 0.95
    hnsw.save(tmp_path / "hnsw.faiss")
    assert VectorIndex.load(tmp_path / "hnsw.faiss", settings).kind == "hnsw"


def test_k_larger_than_the_collection_is_clipped() -> None:
    index = VectorIndex.build(_clustered(4, 8, 3), IndexSettings())
    sims, ids = index.search(np.ones(8, np.float32), 10)
    assert ids.shape == (1, 4)

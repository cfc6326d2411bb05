"""RAD: retrieve the most similar reference cases with each specialist's embedding.

For every (specialist model digest, case library digest) pair the library is embedded once, the
unit-length embeddings are indexed and everything is cached on disk, so a restart loads the
index instead of re-embedding. The specialist's class probabilities on the library are kept with
the index: the consensus arbiter calibrates its weights on them (leave-one-out neighbours).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gsco_common.errors import RuntimeServiceError
from gsco_runtime.cases.library import CaseLibrary
from gsco_runtime.decision import RetrievedCase
from gsco_runtime.rad.index import IndexSettings, VectorIndex

# images -> (probabilities [N, C], embeddings [N, D])
PredictFn = Callable[[Sequence[np.ndarray]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Neighbours:
    """Top-k retrieved library rows for one query, best first."""

    rows: np.ndarray
    similarities: np.ndarray


@dataclass
class LibraryIndex:
    """One specialist's view of the library: index, embeddings and its own predictions."""

    index: VectorIndex
    embeddings: np.ndarray
    probabilities: np.ndarray
    from_cache: bool


def _key(model_digest: str, library_digest: str, settings: IndexSettings) -> str:
    raw = f"{model_digest}|{library_digest}|{settings.key()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class Retriever:
    """Per-specialist FAISS indexes over one task's case library, cached in ``cache_dir``."""

    def __init__(
        self, library: CaseLibrary, cache_dir: Path, settings: IndexSettings | None = None, k: int = 10
    ) -> None:
        if k < 1:
            raise RuntimeServiceError("retrieval k must be at least 1")
        self.library = library
        self.cache_dir = cache_dir
        self.settings = settings or IndexSettings()
        self.k = k
        self._indexes: dict[str, LibraryIndex] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    def ensure(self, model_digest: str, predict: PredictFn) -> LibraryIndex:
        """The specialist's index: from memory, from the disk cache, or built by embedding the library."""
        key = _key(model_digest, self.library.digest, self.settings)
        with self._lock:
            if key in self._indexes:
                return self._indexes[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._indexes:
                    return self._indexes[key]
            built = self._load(key) or self._build(key, predict)
            with self._lock:
                self._indexes[key] = built
            return built

    def retain(self, model_digests: Iterable[str]) -> None:
        """Drop in-memory indexes of specialists that left the pool (disk cache stays)."""
        keep = {_key(d, self.library.digest, self.settings) for d in model_digests}
        with self._lock:
            for key in list(self._indexes):
                if key not in keep:
                    del self._indexes[key]

    @property
    def indexes_in_memory(self) -> int:
        """How many specialists' indexes are held in memory (revoked ones are freed by :meth:`retain`)."""
        with self._lock:
            return len(self._indexes)

    def search(
        self, model_digest: str, predict: PredictFn, embedding: np.ndarray, k: int | None = None
    ) -> Neighbours:
        entry = self.ensure(model_digest, predict)
        sims, rows = entry.index.search(embedding.reshape(1, -1), k or self.k)
        valid = rows[0] >= 0
        return Neighbours(rows=rows[0][valid], similarities=sims[0][valid])

    def leave_one_out(self, model_digest: str, predict: PredictFn, rows: np.ndarray) -> list[Neighbours]:
        """Neighbours of library rows among the *other* rows (the query case itself excluded)."""
        entry = self.ensure(model_digest, predict)
        sims, found = entry.index.search(entry.embeddings[rows], self.k + 1)
        result = []
        for row, row_sims, row_found in zip(rows, sims, found, strict=True):
            keep = (row_found != row) & (row_found >= 0)
            result.append(Neighbours(rows=row_found[keep][: self.k], similarities=row_sims[keep][: self.k]))
        return result

    def _folder(self, key: str) -> Path:
        return self.cache_dir / "rad" / key

    def _load(self, key: str) -> LibraryIndex | None:
        folder = self._folder(key)
        if not (folder / "meta.json").is_file():
            return None
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("library_digest") != self.library.digest:
            return None
        return LibraryIndex(
            index=VectorIndex.load(folder / "index.faiss", self.settings),
            embeddings=np.load(folder / "embeddings.npy", allow_pickle=False),
            probabilities=np.load(folder / "probabilities.npy", allow_pickle=False),
            from_cache=True,
        )

    def _build(self, key: str, predict: PredictFn) -> LibraryIndex:
        probabilities, embeddings = predict(self.library.images)
        index = VectorIndex.build(embeddings, self.settings)
        folder = self._folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "embeddings.npy", embeddings.astype(np.float32))
        np.save(folder / "probabilities.npy", probabilities.astype(np.float32))
        index.save(folder / "index.faiss")
        meta = {"library_digest": self.library.digest, "kind": index.kind, "size": len(index)}
        (folder / "meta.json").write_text(json.dumps(meta))
        return LibraryIndex(index=index, embeddings=embeddings, probabilities=probabilities, from_cache=False)


def fuse_by_rank(
    neighbours: list[tuple[str, Neighbours | None]], retriever: Retriever | None
) -> tuple[RetrievedCase, ...]:
    """The ``k`` cases shown with a decision, taken rank by rank from every specialist's own top-k.

    ``neighbours`` holds ``(specialist name, its neighbours)`` in pool order. Each specialist's
    similarities live in its own embedding space, so they are never compared across
    specialists: the fused list holds every specialist's first case (pool order), then every
    second case, and so on; a case found by several keeps its first place and the specialist
    (and that specialist's similarity) that put it there.
    """
    if retriever is None:
        return ()
    lists = [(name, found) for name, found in neighbours if found is not None]
    depth = max((found.rows.shape[0] for _, found in lists), default=0)
    chosen: dict[int, tuple[float, str]] = {}
    for rank in range(depth):
        for name, found in lists:
            if rank < found.rows.shape[0] and int(found.rows[rank]) not in chosen:
                chosen[int(found.rows[rank])] = (float(found.similarities[rank]), name)
    library = retriever.library
    return tuple(
        RetrievedCase(
            library.case_ids[row], library.label_names[int(library.labels[row])], round(sim, 6), name
        )
        for row, (sim, name) in list(chosen.items())[: retriever.k]
    )

"""What the cases a specialist retrieved say: their labels, and how reliable the specialist is there.

Each specialist retrieves in its own embedding space, and its own prediction on every library
case is kept with its index, so the ``k`` cases it finds for a query show how it did on images
like this one: its *local competence*. The consensus scales the specialist's weight for that query
by it, so a specialist keeps its weight where it has been reliable and loses it where it has not
(e.g. a specialist trained on a label-skewed shard, near the class it under-calls). The weights
themselves are fitted or taken from the cards as before; competence only moves them per query.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gsco_runtime.arbiters.weights import neighbour_distribution
from gsco_runtime.pool.specialist import LoadedSpecialist
from gsco_runtime.rad.retriever import Neighbours, Retriever


def neighbour_rows(neighbours: Sequence[Neighbours], k: int) -> np.ndarray:
    """Library rows of each query's neighbours, padded to ``[N, k]`` with ``-1``."""
    rows = np.full((len(neighbours), k), -1, dtype=np.int64)
    for i, found in enumerate(neighbours):
        count = min(k, found.rows.shape[0])
        rows[i, :count] = found.rows[:count]
    return rows


def neighbour_labels(
    neighbours: Sequence[Neighbours], library_labels: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pad neighbour lists to ``[N, k]`` label and similarity arrays (label ``-1`` = none)."""
    rows = neighbour_rows(neighbours, k)
    labels = np.where(rows >= 0, library_labels[np.maximum(rows, 0)], -1)
    sims = np.zeros((len(neighbours), k), dtype=np.float64)
    for i, found in enumerate(neighbours):
        count = min(k, found.similarities.shape[0])
        sims[i, :count] = found.similarities[:count]
    return labels, sims


def local_competence(rows: np.ndarray, probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The specialist's smoothed accuracy on each query's retrieved cases, ``[N]``.

    Args:
        rows: ``[N, k]`` retrieved library rows (``-1``: none).
        probabilities: ``[L, C]`` the specialist's own probabilities on the library.
        labels: ``[L]`` the library's labels.

    Returns ``(right + 1) / (retrieved + 2)`` per query (Laplace smoothing: 0.5 with no neighbours,
    never 0 or 1 from a handful of cases).
    """
    valid = rows >= 0
    safe = np.where(valid, rows, 0)
    right = (probabilities[safe].argmax(axis=-1) == labels[safe]) & valid
    return (right.sum(axis=1) + 1.0) / (valid.sum(axis=1) + 2.0)


def retrieved_distributions(
    retriever: Retriever, neighbours: Sequence[Sequence[Neighbours]], num_classes: int
) -> np.ndarray:
    """Similarity-weighted label distributions ``[S, N, C]`` of the cases each specialist retrieved.

    ``neighbours[s]`` holds specialist ``s``'s neighbours (pool order) of the ``N`` queries.
    """
    dists = []
    for found in neighbours:
        labels, sims = neighbour_labels(found, retriever.library.labels, retriever.k)
        dists.append(neighbour_distribution(labels, sims, num_classes))
    return np.stack(dists)


def retrieval_features(
    retriever: Retriever,
    specialists: Sequence[LoadedSpecialist],
    neighbours: Sequence[Sequence[Neighbours]],
    num_classes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`retrieved_distributions` ``[S, N, C]`` and each specialist's local competence ``[S, N]``."""
    library = retriever.library
    competence = []
    for specialist, found in zip(specialists, neighbours, strict=True):
        entry = retriever.ensure(specialist.info.model_digest, specialist.predict_many)
        rows = neighbour_rows(found, retriever.k)
        competence.append(local_competence(rows, entry.probabilities, library.labels))
    return retrieved_distributions(retriever, neighbours, num_classes), np.stack(competence)

"""Non-IID slices of one labelled dataset, for the one-machine demo, the tests and the benchmark.

Site ``i`` of ``n`` gets a share of the images proportional to ``n - i`` (the first site is the
largest) and a class mix tilted towards class ``i mod C`` (three times its natural weight), so
sites differ in size and class balance as hospitals do. Every site gets every class. Slices are
written in MedMNIST ``.npz`` layout (``train_images`` / ``train_labels``); each site carves its
own validation and test splits from them, as it would from its own data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gsco_common.errors import DataError

TILT = 3.0


def non_iid_indices(
    labels: np.ndarray, sites: int, seed: int = 0, limit: int | None = None
) -> list[np.ndarray]:
    """Indices of ``labels`` for each site (disjoint; at most ``limit`` images in total)."""
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if sites < 1:
        raise DataError("at least one site is needed")
    rng = np.random.default_rng(seed)
    pool = rng.permutation(labels.size)
    if limit is not None:
        pool = pool[:limit]
    classes = int(labels.max()) + 1 if labels.size else 0
    size_share = np.array([sites - i for i in range(sites)], dtype=np.float64)
    tilt = np.ones((sites, classes))
    for site in range(sites):
        tilt[site, site % classes] = TILT
    parts: list[list[np.ndarray]] = [[] for _ in range(sites)]
    for cls in range(classes):
        members = pool[labels[pool] == cls]
        weights = size_share * tilt[:, cls]
        cuts = np.floor(np.cumsum(weights / weights.sum())[:-1] * members.size).astype(np.int64)
        for site, chunk in enumerate(np.split(members, cuts)):
            parts[site].append(chunk)
    result = [np.sort(np.concatenate(chunks)) for chunks in parts]
    for site, indices in enumerate(result):
        present = np.unique(labels[indices]).size
        if present < classes:
            raise DataError(f"site {site + 1} would miss a class: use fewer sites or more images")
    return result


def write_site_slices(
    data: Path, out_dir: Path, sites: int, seed: int = 0, limit: int | None = None
) -> list[Path]:
    """Split ``data``'s train split into ``sites`` non-IID ``.npz`` files under ``out_dir``."""
    try:
        with np.load(data, allow_pickle=False) as archive:
            images, labels = archive["train_images"], archive["train_labels"]
    except (OSError, KeyError, ValueError):
        raise DataError(
            "the data file must be a MedMNIST-style .npz with train_images/train_labels"
        ) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for site, indices in enumerate(non_iid_indices(labels, sites, seed, limit), start=1):
        path = out_dir / f"site-{site}.npz"
        np.savez_compressed(path, train_images=images[indices], train_labels=labels[indices])
        paths.append(path)
    return paths

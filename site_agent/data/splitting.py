"""Seeded, label-stratified, patient-grouped assignment of images to train / val / test.

Every image belongs to a group: its patient when a patient id is known, else itself. Groups
never straddle splits, so no patient appears in two splits. Splits the source already gives are
kept; the missing ones (with a fraction > 0) are carved out of the pool (``train`` plus images
without a split). Pool groups are stratified by their majority label; in a seeded random order
(groups listed in reading order, then permuted) each carved split takes groups until it holds
its fraction of the stratum's images: at least one group when the stratum can spare it, and
the training split always keeps one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from gsco_common.errors import DataError

GroupKey = tuple[str, str | int]


def assign_splits(
    labels: Sequence[int],
    given: Sequence[str | None],
    patients: Sequence[str | None],
    fractions: dict[str, float],
    seed: int,
) -> list[str]:
    """Return the split name of every image (same order as ``labels``)."""
    groups: dict[GroupKey, list[int]] = {}
    for index, patient in enumerate(patients):
        groups.setdefault(("patient", patient) if patient else ("image", index), []).append(index)
    fixed: dict[str, list[GroupKey]] = {"train": [], "val": [], "test": []}
    pool: list[GroupKey] = []
    leaking = 0
    for key, members in groups.items():
        stated = {given[i] for i in members if given[i] is not None}
        leaking += len(stated) > 1
        target = next(iter(stated)) if len(stated) == 1 else None
        (pool if target in (None, "train") else fixed[target]).append(key)
    if leaking:
        raise DataError(
            f"{leaking} patient(s) have images in more than one of the given splits",
            hint="give all images of a patient the same split, or leave the split column empty",
        )
    carve = [split for split in ("val", "test") if not fixed[split] and fractions.get(split, 0.0) > 0]
    result = ["train"] * len(labels)
    for split in ("val", "test"):
        for key in fixed[split]:
            for index in groups[key]:
                result[index] = split
    if carve:
        rng = np.random.default_rng(seed)
        for _, stratum in sorted(_strata(pool, groups, labels).items()):
            _carve_stratum(stratum, groups, carve, fractions, rng, result)
    return result


def _strata(
    pool: list[GroupKey], groups: dict[GroupKey, list[int]], labels: Sequence[int]
) -> dict[int, list[GroupKey]]:
    strata: dict[int, list[GroupKey]] = {}
    for key in pool:
        counts = Counter(int(labels[i]) for i in groups[key])
        majority = min(counts, key=lambda label: (-counts[label], label))
        strata.setdefault(majority, []).append(key)
    return strata


def _carve_stratum(
    stratum: list[GroupKey],
    groups: dict[GroupKey, list[int]],
    carve: list[str],
    fractions: dict[str, float],
    rng: np.random.Generator,
    result: list[str],
) -> None:
    order = [stratum[i] for i in rng.permutation(len(stratum))]
    images = sum(len(groups[key]) for key in order)
    position = 0
    for split in carve:
        target = max(1, math.floor(fractions[split] * images + 0.5))
        taken = 0
        while taken < target and len(order) - position > 1:
            for index in groups[order[position]]:
                result[index] = split
            taken += len(groups[order[position]])
            position += 1

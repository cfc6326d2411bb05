"""Shards of a study's data sets: which images, written as their own ``.npz`` outside the repo.

Each site trains on its own shard file, so its card's training-set digest (file content + split)
differs per shard, and the case library's import digest is compared with them by the hub. Shards
of one split are cut from one seeded shuffle, so non-overlapping ranges are disjoint; the runner
still checks every pair by index before anything runs.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gsco_common.errors import ConfigError, DataError
from hub.study.spec import ShardSpec, ShiftSpec
from registry.input_limits import CORRUPT_NPZ_ERRORS, check_npz, label_indices


@dataclass(frozen=True)
class Shard:
    """The chosen rows of one split of one data set."""

    key: str
    spec: ShardSpec
    indices: np.ndarray
    labels: np.ndarray

    def class_counts(self, num_classes: int) -> list[int]:
        return np.bincount(self.labels, minlength=num_classes).tolist()


def read_split(path: Path, split: str, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Images and label indices (``0 .. num_labels - 1``) of ``split`` in a MedMNIST-style ``.npz``."""
    unreadable = f"{path.name} cannot be read as an .npz data set"
    try:
        check_npz(path)
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(unreadable, hint="a study's data set is an .npz archive, not a single .npy array")
        with archive as data:
            missing = [key for key in (f"{split}_images", f"{split}_labels") if key not in data.files]
            if missing:
                raise DataError(
                    f"{path.name} has no {' or '.join(missing)}", hint=f"its arrays: {sorted(data.files)}"
                )
            images = np.asarray(data[f"{split}_images"])
            labels = label_indices(data[f"{split}_labels"], f"{path.name}: {split}_labels")
    except CORRUPT_NPZ_ERRORS as exc:
        raise DataError(f"{unreadable}: {exc}") from None
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{path.name}: {split} has {images.shape[0]} images but {labels.shape[0]} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= num_labels):
        raise DataError(
            f"{path.name}: {split} labels must be indices 0..{num_labels - 1} of the task's labels, "
            f"found {labels.min()}..{labels.max()}"
        )
    return images, labels


def _order(n: int, seed: int, split: str) -> np.ndarray:
    """The one seeded shuffle of a split that every shard of it is cut from."""
    return np.random.default_rng([seed, zlib.crc32(split.encode())]).permutation(n)


def _skew(
    part: np.ndarray, labels: np.ndarray, shares: dict[int, float], rng: np.random.Generator
) -> np.ndarray:
    """The largest subset of ``part`` whose class shares are ``shares`` (others keep their ratio)."""
    counts = np.bincount(labels[part], minlength=int(labels.max()) + 1)
    rest = [c for c in range(counts.size) if c not in shares and counts[c] > 0]
    left = 1.0 - sum(shares.values())
    target = dict(shares)
    rest_total = counts[rest].sum()
    for c in rest:
        target[c] = left * counts[c] / rest_total if rest_total else 0.0
    total = min(counts[c] / share for c, share in target.items() if share > 0)
    picked = [
        rng.choice(part[labels[part] == c], size=int(round(share * total)), replace=False)
        for c, share in target.items()
        if share > 0
    ]
    return np.concatenate(picked)


def _stratified(part: np.ndarray, labels: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    if part.size <= limit:
        return part
    classes = np.unique(labels[part])
    picked = [
        rng.choice(
            part[labels[part] == c], size=max(1, round(limit * np.mean(labels[part] == c))), replace=False
        )
        for c in classes
    ]
    return np.concatenate(picked)


def select(key: str, spec: ShardSpec, labels: np.ndarray, label_names: Sequence[str], seed: int) -> Shard:
    """The rows ``spec`` names in a split with these ``labels`` (sorted, reproducible from ``seed``)."""
    n = labels.shape[0]
    start, stop = spec.range
    part = _order(n, seed, spec.split)[int(np.floor(start * n)) : int(np.floor(stop * n))]
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    if spec.label_skew:
        part = _skew(part, labels, {label_names.index(k): v for k, v in spec.label_skew.items()}, rng)
    if spec.max_images is not None:
        part = _stratified(part, labels, spec.max_images, rng)
    part = np.sort(part)
    if np.unique(labels[part]).size < 2:
        raise ConfigError(
            f"{key}: the shard holds {part.size} images of fewer than two classes", hint="widen its range"
        )
    return Shard(key, spec, part, labels[part])


def overlaps(shards: Sequence[Shard], others: Sequence[Shard]) -> list[tuple[str, str, int]]:
    """``(key, other key, shared images)`` for every pair from the same split of the same data set."""
    found = []
    for shard in shards:
        for other in others:
            same_source = (shard.spec.dataset, shard.spec.split) == (other.spec.dataset, other.spec.split)
            if shard.key != other.key and same_source:
                shared = int(np.intersect1d(shard.indices, other.indices).size)
                if shared:
                    found.append((shard.key, other.key, shared))
    return found


def _blur(images: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (1, 2):
        padded = np.pad(
            images, [(radius, radius) if a == axis else (0, 0) for a in range(images.ndim)], mode="reflect"
        )
        images = np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="valid"), axis, padded)
    return images


def apply_shift(images: np.ndarray, shift: ShiftSpec, seed: int) -> np.ndarray:
    """Simulate another acquisition: lower resolution, blur, contrast, gamma, noise (uint8 in and out)."""
    if shift.is_identity:
        return images
    x = images.astype(np.float64) / 255.0
    if shift.downsample > 1:
        f = shift.downsample
        h, w = (x.shape[1] // f) * f, (x.shape[2] // f) * f
        small = x[:, :h, :w].reshape(x.shape[0], h // f, f, w // f, f, *x.shape[3:]).mean(axis=(2, 4))
        x = x.copy()
        x[:, :h, :w] = small.repeat(f, axis=1).repeat(f, axis=2)
    if shift.blur_sigma > 0:
        x = _blur(x, shift.blur_sigma)
    if shift.contrast != 1.0:
        mean = x.mean(axis=tuple(range(1, x.ndim)), keepdims=True)
        x = mean + shift.contrast * (x - mean)
    x = np.clip(x, 0.0, 1.0) ** shift.gamma
    if shift.noise_std > 0:
        x = x + np.random.default_rng(seed).normal(0.0, shift.noise_std, x.shape)
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def write_shard(path: Path, split: str, images: np.ndarray, labels: np.ndarray, about: str) -> Path:
    """A MedMNIST-layout ``.npz`` holding one split (labels ``N x 1``) and a provenance note."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez(
            handle,
            **{f"{split}_images": images, f"{split}_labels": labels.reshape(-1, 1).astype(np.uint8)},
            about=np.array(about),
        )
    return path

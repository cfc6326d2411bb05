"""Hostile ``.npz`` files for the two npz readers (the site's data source and the hub's cases)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.properties.hostile import HUGE_INTS, mutated_bytes

DTYPES = st.sampled_from(
    ["uint8", "uint16", "int64", "float32", "float64", "bool", "complex64", "<U3", "|S2", "<M8[s]"]
)
SHAPES = st.sampled_from(
    [(), (0,), (4,), (4, 1), (4, 3), (3, 1), (4, 5, 5), (4, 5, 5, 3), (4, 1, 5), (4, 5, 5, 2, 1)]
)
KEYS = st.sampled_from(["train", "val", "test", "images", "labels", "about"])


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def valid_npz() -> bytes:
    """Four 5x5 images per split, labels 0/1, the MedMNIST layout plus plain ``images``/``labels``."""
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray] = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = rng.integers(0, 256, (4, 5, 5), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.array([[0], [1], [0], [1]], dtype=np.uint8)
    arrays["images"], arrays["labels"] = arrays["train_images"], arrays["train_labels"]
    return npz_bytes(arrays)


@st.composite
def wrong_arrays(draw: st.DrawFn) -> bytes:
    """Images and labels of any dtype and shape, under MedMNIST or plain names, sometimes missing."""
    arrays: dict[str, np.ndarray] = {}
    for _ in range(draw(st.integers(1, 4))):
        stem = draw(KEYS)
        name = (
            stem
            if stem in ("images", "labels", "about")
            else f"{stem}_{draw(st.sampled_from(['images', 'labels']))}"
        )
        arrays[name] = draw(hnp.arrays(np.dtype(draw(DTYPES)), draw(SHAPES)))
    return npz_bytes(arrays)


@st.composite
def forged_header(draw: st.DrawFn) -> bytes:
    """A member whose ``.npy`` header declares a huge or negative shape over a few bytes."""
    shape = tuple(draw(st.lists(HUGE_INTS | st.integers(0, 8), min_size=1, max_size=3)))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{draw(KEYS)}_images.npy", header.getvalue() + b"\x01" * draw(st.integers(0, 64)))
        archive.writestr("train_labels.npy", npz_member(np.zeros((4, 1), np.uint8)))
    return buffer.getvalue()


def npz_member(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


HOSTILE_NPZ = mutated_bytes(valid_npz()) | wrong_arrays() | forged_header()
"""Damaged archives, wrong dtypes and shapes, forged sizes."""

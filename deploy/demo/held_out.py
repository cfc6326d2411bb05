"""Split the demo's held-out images into the hub's case library and one image to diagnose.

Usage: ``held_out.py DATA.npz SPLIT LIBRARY.npz IMAGE.png LABELS`` (SPLIT ``val`` or ``test``, the
library's; LABELS comma-separated, in task order). Neither comes from the ``train_`` split the
specialist learned from. The image is ``test_[0]`` when the library is ``val_`` and the data has a
``test_`` split; otherwise it is the library split's first image, which LIBRARY.npz leaves out, so
the image diagnosed is never one of the cases the hub retrieves for it (it would find itself, at
cosine 1). resolve_data.py has checked that the split exists.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image


def split_held_out(data: dict[str, np.ndarray], split: str) -> tuple[str, dict[str, np.ndarray]]:
    """The split whose first image is diagnosed, and the library's ``SPLIT_images`` and ``SPLIT_labels``."""
    images, labels = data[f"{split}_images"], data[f"{split}_labels"]
    if split == "val" and "test_images" in data:
        return "test", {f"{split}_images": images, f"{split}_labels": labels}
    return split, {f"{split}_images": images[1:], f"{split}_labels": labels[1:]}


def main(argv: list[str]) -> None:
    data_path, split, library_path, image_path, names = argv
    with np.load(data_path, allow_pickle=False) as archive:
        data = {key: archive[key] for key in archive.files if key.startswith(("val_", "test_"))}
    image_split, library = split_held_out(data, split)
    with Path(library_path).open("wb") as handle:
        np.savez_compressed(handle, **library)
    Image.fromarray(data[f"{image_split}_images"][0]).save(image_path)
    truth = int(data[f"{image_split}_labels"][0].ravel()[0])
    print(f"held-out image {image_split}_images[0], true label: {names.split(',')[truth]}")


if __name__ == "__main__":
    main(sys.argv[1:])

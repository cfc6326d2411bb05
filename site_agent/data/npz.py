"""MedMNIST ``.npz`` reader: ``{train,val,test}_images`` / ``{train,val,test}_labels`` arrays.

Images are ``N x H x W`` (or ``N x H x W x 3``) uint8; labels ``N x 1`` (or ``N``) class indices,
which the loader maps onto the task's ordered labels (index ``i`` -> ``i``-th label unless
``data.label_aliases`` says otherwise). Extra keys (such as ``about``) are ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gsco_common.errors import DataError
from registry.input_limits import CORRUPT_NPZ_ERRORS, check_image_stack, check_npz
from site_agent.data.config import DataConfig
from site_agent.data.sources import SPLIT_SYNONYMS, SourceItem, SourceRead, path_identifiers, register_source


@register_source("npz")
def read_npz(config: DataConfig, root: Path) -> SourceRead:
    check_npz(root)  # forged array headers: a one-line error, not a MemoryError
    try:
        with np.load(root, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files if key.endswith(("_images", "_labels"))}
    except CORRUPT_NPZ_ERRORS as exc:
        raise DataError(f"data.path: the .npz file cannot be read ({type(exc).__name__})") from None
    not_arrays = sorted(key for key, value in arrays.items() if not isinstance(value, np.ndarray))
    if not_arrays:  # a member that is no .npy file: np.load hands back its raw bytes
        raise DataError(
            f"data.path: '{not_arrays[0]}' in the .npz file is not a NumPy array",
            hint="write the file with numpy.savez or numpy.savez_compressed",
        )
    splits = [split for split in dict.fromkeys(SPLIT_SYNONYMS.values()) if f"{split}_images" in arrays]
    if not splits:
        raise DataError(
            "data.path: the .npz file has no '<split>_images' arrays",
            hint="expected MedMNIST keys train_images / train_labels (and val_, test_)",
        )
    items: list[SourceItem] = []
    for split in splits:
        images = arrays[f"{split}_images"]
        labels = arrays.get(f"{split}_labels")
        check_image_stack(images, f"data.path: '{split}_images'")
        if labels is None or labels.ndim == 0 or labels.shape[0] != images.shape[0]:
            raise DataError(
                f"data.path: '{split}_labels' is missing or does not match '{split}_images' in length"
            )
        if labels.ndim > 2 or (labels.ndim == 2 and labels.shape[1] != 1):
            raise DataError(
                "data.path: multi-label .npz files are not supported", hint="labels must be N x 1"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError("data.path: .npz labels must be integer class indices")
        items.extend(
            SourceItem(label=str(int(label)), image=image, split=split)
            for image, label in zip(images, labels.reshape(-1), strict=True)
        )
    return SourceRead(items, path_identifiers(root, str(config.path)), integer_labels=True)

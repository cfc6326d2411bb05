"""Write one held-out image of the demo's npz as PNG, for the diagnosis step.

Usage: ``sample_image.py DATA.npz OUT.png LABELS [INDEX]`` (LABELS comma-separated, in task order).
The image comes from ``test_`` (else ``val_``), never from the ``train_`` split the specialist
learned from. The case library holds ``val_`` (else ``test_``), so without a ``test_`` split the
image is also one of the library's cases. resolve_data.py has checked that one of them exists.
"""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image

data = np.load(sys.argv[1], allow_pickle=False)
labels = sys.argv[3].split(",")
key = "test_images" if "test_images" in data.files else "val_images"
index = int(sys.argv[4]) if len(sys.argv) > 4 else 0
Image.fromarray(data[key][index]).save(sys.argv[2])
truth = int(data[key.replace("images", "labels")][index].ravel()[0])
print(f"held-out image {key}[{index}], true label: {labels[truth]}")

"""Write one held-out image of an npz dataset as PNG, for the demo's diagnosis step."""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image

data = np.load(sys.argv[1])
key = "test_images" if "test_images" in data.files else "val_images"
index = int(sys.argv[3]) if len(sys.argv) > 3 else 0
Image.fromarray(data[key][index]).save(sys.argv[2])
print(f"{key}[{index}] true label index {int(data[key.replace('images', 'labels')][index].ravel()[0])}")

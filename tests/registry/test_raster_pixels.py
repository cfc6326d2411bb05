"""One mapping from a Pillow image to the raw array, used by the site, the case library and uploads.

A palette PNG used to become grayscale at the hub and RGB at the site: the same file then reached
a model as two different inputs. These tests write each image mode to a file and read it through
all three readers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gsco_runtime.cases.readers import read_image
from hub.service.intake import decode
from registry.bundle.raster_pixels import pil_to_array
from site_agent.data.decode import decode_pil

rng = np.random.default_rng(7)
RGB = rng.integers(0, 256, size=(9, 11, 3), dtype=np.uint8)
GRAY = rng.integers(0, 256, size=(9, 11), dtype=np.uint8)


def _palette(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(rgb).quantize(colors=16)


def _expected_palette_rgb(img: Image.Image) -> np.ndarray:
    """The palette's own colours looked up by hand, independently of Pillow's convert()."""
    palette = np.asarray(img.getpalette()[: 3 * 256], dtype=np.uint8).reshape(-1, 3)
    return palette[np.asarray(img)]


def _three_readers(img: Image.Image, tmp_path: Path) -> list[np.ndarray]:
    path = tmp_path / "image.png"
    img.save(path)
    upload = decode(path.read_bytes(), max_bytes=1 << 20, max_pixels=1 << 20)
    return [decode_pil(path), read_image(path), upload.pixels]


def test_a_colour_palette_png_is_the_same_rgb_array_at_the_site_the_library_and_the_upload(
    tmp_path: Path,
) -> None:
    img = _palette(RGB)
    expected = _expected_palette_rgb(img)
    for array in _three_readers(img, tmp_path):
        assert array.dtype == np.uint8 and array.shape == (9, 11, 3)
        np.testing.assert_array_equal(array, expected)


@pytest.mark.parametrize(
    ("mode", "dtype", "shape"),
    [("L", np.uint8, (9, 11)), ("RGB", np.uint8, (9, 11, 3)), ("I;16", np.uint16, (9, 11))],
)
def test_each_reader_gives_the_same_array_for_each_mode(
    mode: str, dtype: type, shape: tuple[int, ...], tmp_path: Path
) -> None:
    source = {"L": GRAY, "RGB": RGB, "I;16": GRAY.astype(np.uint16) * 257}[mode]
    img = Image.fromarray(source)
    assert img.mode == mode
    for array in _three_readers(img, tmp_path):
        assert array.dtype == dtype and array.shape == shape
        np.testing.assert_array_equal(array, source)


def test_gray_with_alpha_drops_the_alpha_and_float_images_scale_to_unit_range() -> None:
    la = Image.fromarray(np.stack([GRAY, np.full_like(GRAY, 3)], axis=-1), mode="LA")
    np.testing.assert_array_equal(pil_to_array(la), GRAY)
    values = np.array([[2.0, 4.0], [6.0, 10.0]], dtype=np.float32)
    np.testing.assert_allclose(pil_to_array(Image.fromarray(values, mode="F")), [[0, 0.25], [0.5, 1.0]])
    constant = Image.fromarray(np.full((2, 2), 5.0, dtype=np.float32), mode="F")
    np.testing.assert_array_equal(pil_to_array(constant), np.zeros((2, 2), dtype=np.float32))

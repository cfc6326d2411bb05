import numpy as np
import pytest

from gsco_common.errors import DataError
from registry.bundle.preprocess import Preprocessing, preprocess, preprocess_batch


def test_gray_uint8_becomes_three_normalised_channels():
    spec = Preprocessing(input_size=16, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    image = np.full((16, 16), 255, dtype=np.uint8)
    out = preprocess(image, spec)
    assert out.shape == (3, 16, 16) and out.dtype == np.float32
    np.testing.assert_allclose(out, (1.0 - 0.5) / 0.25)


def test_uint16_and_float_scale_to_unit_range():
    spec = Preprocessing(input_size=8, mean=(0, 0, 0), std=(1, 1, 1))
    np.testing.assert_allclose(preprocess(np.full((8, 8), 65535, np.uint16), spec), 1.0)
    np.testing.assert_allclose(preprocess(np.full((8, 8), 0.25, np.float32), spec), 0.25)


def test_colour_copy_of_gray_image_gives_same_input():
    spec = Preprocessing(input_size=12)
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (20, 20), dtype=np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    np.testing.assert_allclose(preprocess(gray, spec), preprocess(rgb, spec), atol=1e-5)


def test_rgb_mode_keeps_colour_and_resizes():
    spec = Preprocessing(input_size=10, channels="rgb", mean=(0, 0, 0), std=(1, 1, 1))
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    image[..., 0] = 255
    out = preprocess(image, spec)
    assert out.shape == (3, 10, 10)
    np.testing.assert_allclose(out[0], 1.0, atol=1e-5)
    np.testing.assert_allclose(out[1:], 0.0, atol=1e-5)


def test_round_trip_through_dict_and_batch():
    spec = Preprocessing(input_size=9, interpolation="bicubic")
    assert Preprocessing.from_dict(spec.to_dict()) == spec
    batch = preprocess_batch([np.zeros((4, 4), np.uint8), np.ones((5, 5), np.uint8)], spec)
    assert batch.shape == (2, 3, 9, 9)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_size": 2},
        {"input_size": 16, "interpolation": "lanczos9"},
        {"input_size": 16, "channels": "bgr"},
    ],
)
def test_invalid_specs_are_refused(kwargs):
    with pytest.raises(DataError):
        Preprocessing(**kwargs)


def test_bad_image_shape_and_dtype_are_clear_errors():
    spec = Preprocessing(input_size=8)
    with pytest.raises(DataError, match="shape"):
        preprocess(np.zeros((4, 4, 5), np.uint8), spec)
    with pytest.raises(DataError, match="dtype"):
        preprocess(np.zeros((4, 4), np.int64), spec)

import numpy as np
import pytest

from gsco_common.errors import DataError, InputLimitError
from registry.bundle.preprocess import Preprocessing, preprocess, preprocess_batch
from registry.input_limits import MAX_PIXELS_ENV


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


def test_pad_keeps_the_aspect_ratio_with_a_centred_square():
    """A 4x8 image is padded to 8x8 (two black rows above, two below), then resized (here: none)."""
    spec = Preprocessing(input_size=8, mean=(0, 0, 0), std=(1, 1, 1), resize="pad", pad_value=0.0)
    image = np.full((4, 8), 255, dtype=np.uint8)
    expected = np.zeros((8, 8), np.float32)
    expected[2:6] = 1.0
    np.testing.assert_array_equal(preprocess(image, spec), np.repeat(expected[None], 3, axis=0))
    stretched = preprocess(image, Preprocessing(input_size=8, mean=(0, 0, 0), std=(1, 1, 1)))
    np.testing.assert_array_equal(stretched, np.ones((3, 8, 8), np.float32))


def test_pad_puts_the_odd_pixel_bottom_right_and_uses_the_pad_value():
    spec = Preprocessing(input_size=8, mean=(0, 0, 0), std=(1, 1, 1), resize="pad", pad_value=0.5)
    tall = np.ones((8, 5), np.float32)
    row = [0.5, 1, 1, 1, 1, 1, 0.5, 0.5]
    np.testing.assert_array_equal(preprocess(tall, spec)[0], [row] * 8)
    rgb = Preprocessing(
        input_size=8, mean=(0, 0, 0), std=(1, 1, 1), channels="rgb", resize="pad", pad_value=0.5
    )
    wide = np.zeros((5, 8, 3), np.uint8)
    column = [0.5, 0, 0, 0, 0, 0, 0.5, 0.5]
    np.testing.assert_array_equal(preprocess(wide, rgb)[:, :, 0], [column] * 3)


def test_a_card_without_the_resize_field_keeps_stretching():
    old = {
        "input_size": 8,
        "mean": [0, 0, 0],
        "std": [1, 1, 1],
        "interpolation": "bilinear",
        "channels": "rgb",
    }
    spec = Preprocessing.from_dict(old)
    assert (spec.resize, spec.pad_value) == ("stretch", 0.0)
    padded = Preprocessing(input_size=8, resize="pad", pad_value=0.25)
    assert Preprocessing.from_dict(padded.to_dict()) == padded


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"resize": "crop"}, "preprocessing.resize"),
        ({"resize": "pad", "pad_value": 1.5}, "preprocessing.pad_value"),
    ],
)
def test_bad_geometry_is_refused_naming_the_field(kwargs, field):
    with pytest.raises(DataError, match=field):
        Preprocessing(input_size=8, **kwargs)


def test_padding_refuses_a_square_over_the_pixel_limit_before_making_it(monkeypatch):
    """1 x 200 is 200 pixels; padded it is 200 x 200 = 40 000, over a limit of 10 000.

    At the default limit a 1 x 60 000 file (60 000 pixels) became a 60 000 x 60 000 float array:
    site training and export, ``gsco-hub diagnose`` / ``evaluate`` and the hub all pad here.
    """
    monkeypatch.setenv(MAX_PIXELS_ENV, "10000")
    wide = np.arange(200, dtype=np.uint8)[None, :]
    padded = Preprocessing(input_size=8, resize="pad")
    with pytest.raises(
        InputLimitError, match=f"200x200 pixels, more than the limit of 10000 \\({MAX_PIXELS_ENV}\\)"
    ):
        preprocess(wide, padded)
    with pytest.raises(InputLimitError):
        preprocess(wide.T, padded)
    with pytest.raises(InputLimitError):
        preprocess_batch([wide], padded)
    assert InputLimitError.code == "GSCO-210"
    # resized straight to a square, no square is made: nothing beyond the image is allocated
    assert preprocess(wide, Preprocessing(input_size=8)).shape == (3, 8, 8)
    monkeypatch.setenv(MAX_PIXELS_ENV, "40000")  # a square at the limit is made as before
    assert preprocess(wide, padded).shape == (3, 8, 8)

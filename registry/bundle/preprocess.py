"""Image preprocessing carried by the model card: the one implementation used everywhere.

``site-agent evaluate``, ONNX parity checks, the GSCo runtime and the hub all turn an image into
the model input through :func:`preprocess`, driven by a :class:`Preprocessing` that lives in
``card.json``. The hub therefore never guesses input size, normalisation or channel handling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from gsco_common.errors import DataError, InputLimitError
from registry.input_limits import IMAGE_CHANNELS, MAX_PIXELS_ENV, max_pixels

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

RESIZE_MODES = ("stretch", "pad")
"""``stretch``: resize straight to a square (cards without ``resize``); ``pad``: keep the aspect ratio."""

_INTERPOLATIONS = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True)
class Preprocessing:
    """How a raw image becomes a ``float32 [3, H, W]`` model input.

    ``channels`` is ``"gray_to_rgb"`` (grayscale replicated to three channels; colour images are
    converted to luminance first so that a colour copy of the same X-ray gives the same input) or
    ``"rgb"`` (grayscale replicated, colour kept).

    ``resize`` is ``"pad"`` (new runs: a non-square image is padded to a square, centred, the odd
    pixel going to the bottom / right, with ``pad_value`` in [0, 1] intensity before
    normalisation, 0 = black; then resized) or ``"stretch"`` (resized straight to a square,
    distorting non-square images: the behaviour of cards written before the field existed).
    """

    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    channels: str = "gray_to_rgb"
    resize: str = "stretch"
    pad_value: float = 0.0

    def __post_init__(self) -> None:
        if self.input_size < 8:
            raise DataError(f"preprocessing.input_size must be >= 8, got {self.input_size}")
        if self.interpolation not in _INTERPOLATIONS:
            raise DataError(
                f"preprocessing.interpolation must be one of {sorted(_INTERPOLATIONS)}, "
                f"got {self.interpolation!r}"
            )
        if self.channels not in ("gray_to_rgb", "rgb"):
            raise DataError(f"preprocessing.channels must be 'gray_to_rgb' or 'rgb', got {self.channels!r}")
        if self.resize not in RESIZE_MODES:
            raise DataError(f"preprocessing.resize must be 'stretch' or 'pad', got {self.resize!r}")
        if not 0.0 <= self.pad_value <= 1.0:
            raise DataError(f"preprocessing.pad_value must be in [0, 1], got {self.pad_value}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise DataError("preprocessing.mean/std must have three values, std > 0")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        return cls(
            input_size=int(data["input_size"]),
            mean=tuple(float(v) for v in data.get("mean", IMAGENET_MEAN)),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data.get("std", IMAGENET_STD)),  # type: ignore[arg-type]
            interpolation=str(data.get("interpolation", "bilinear")),
            channels=str(data.get("channels", "gray_to_rgb")),
            resize=str(data.get("resize", "stretch")),
            pad_value=float(data.get("pad_value", 0.0)),
        )


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """Scale an integer or float image to float32 in [0, 1] (uint8, uint16 or already-float)."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if np.issubdtype(image.dtype, np.floating):
        return np.clip(image.astype(np.float32), 0.0, 1.0)
    raise DataError(f"unsupported image dtype {image.dtype}; expected uint8, uint16 or float in [0, 1]")


def resize_unit_image(image: np.ndarray, size: int, interpolation: str) -> np.ndarray:
    """Resize an ``[H, W]`` or ``[H, W, 3]`` float image in [0, 1] to ``size x size``."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    mode = _INTERPOLATIONS[interpolation]
    if image.ndim == 2:
        resized = Image.fromarray(image, mode="F").resize((size, size), mode)
        return np.asarray(resized, dtype=np.float32)
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c]), mode="F").resize((size, size), mode))
        for c in range(image.shape[2])
    ]
    return np.stack(channels, axis=-1).astype(np.float32)


def square_side(height: int, width: int) -> int:
    """The side of the square :func:`pad_to_square` makes of a ``height x width`` image."""
    return max(height, width)


def pad_to_square(image: np.ndarray, value: float) -> np.ndarray:
    """Pad an ``[H, W]`` or ``[H, W, 3]`` image to a centred square (odd pixel bottom / right).

    The square, not the image, is what allocates: a 1 x 60 000 image (60 000 pixels) would become
    a 60 000 x 60 000 float array (13 GiB). A square of more than :func:`max_pixels`
    (``GSCO_MAX_IMAGE_PIXELS``) pixels is :class:`InputLimitError` before anything is allocated.
    """
    height, width = image.shape[:2]
    side = square_side(height, width)
    if height == width:
        return image
    limit = max_pixels()
    if side * side > limit:
        raise InputLimitError(
            f"a {width}x{height} image padded to a square is {side}x{side} pixels, more than the "
            f"limit of {limit} ({MAX_PIXELS_ENV})",
            hint=f"crop or downscale the image; raise {MAX_PIXELS_ENV} only if this machine has the memory",
        )
    top, left = (side - height) // 2, (side - width) // 2
    pads = [(top, side - height - top), (left, side - width - left)] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, pads, mode="constant", constant_values=value)


def preprocess(image: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """Turn one image (``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]``) into ``float32 [3, S, S]``."""
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in IMAGE_CHANNELS):
        raise DataError(f"image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {tuple(image.shape)}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    unit = to_unit_float(image)
    if unit.ndim == 3 and spec.channels == "gray_to_rgb":
        unit = unit @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    if spec.resize == "pad":
        unit = pad_to_square(unit, spec.pad_value)
    unit = np.clip(resize_unit_image(unit, spec.input_size, spec.interpolation), 0.0, 1.0)
    rgb = np.repeat(unit[None], 3, axis=0) if unit.ndim == 2 else np.transpose(unit, (2, 0, 1))
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray((rgb - mean) / std, dtype=np.float32)


def preprocess_batch(images: list[np.ndarray], spec: Preprocessing) -> np.ndarray:
    """Preprocess a list of images into one ``float32 [N, 3, S, S]`` batch."""
    return np.stack([preprocess(img, spec) for img in images]).astype(np.float32)

"""The wire format of federated weights: the contract between the hub's ServerApp and the sites.

Both ends must read and write it identically, and compute the same float16 arithmetic bit for
bit, so it is defined once, here. The protocol is described on the site's side
(``site_agent/federation/encoding.py``); the hub's side is ``hub/federation/transport.py``.

Weights travel as one flat vector, the names and shapes as a short JSON layout; the float16
conversions go through torch (bit-identical to numpy). Why both: docs/benchmarks.md, "Performance
notes behind code choices".
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from flwr.app import Array, ArrayRecord

from gsco_common.errors import FederationError

ENCODING_KEY = "update-encoding"
"""Downlink: how the site should send its update (``FP16_DELTA``, ``PACKED_FLOAT32``, or anything
else for one array per tensor)."""
FP16_DELTA = "fp16-delta"
"""The update as the packed float16 difference from the weights the site received."""
PACKED_FLOAT32 = "packed-float32"
"""The updated weights themselves, packed, exact: what the hub asks for when the run does not
compress (``compress-updates = false``), and what a site sends instead of ``FP16_DELTA`` when it
clipped the update for differential privacy, because rounding after clipping could raise the
update's norm above the clipping norm the hub's noise is calibrated to."""
ENCODING_RECORD = "encoding"
"""Uplink: the reply's ConfigRecord saying how its weights are encoded."""
DP_MODEL_KEY = "dp-model"
"""Downlink: the run's model has GroupNorm in place of BatchNorm (DP-SGD at the sites), built
alike at the hub and at every site so that the weights have the same names and shapes."""
NUM_ROUNDS_KEY = "num-rounds"
"""Downlink: the run's planned rounds (a DP-SGD site calibrates its noise for all of them)."""
PRIVACY_RECORD = "privacy"
"""Uplink: a DP-SGD site's ConfigRecord with its spent ε, δ and the parameters behind them."""
BASE_KEY = "weights-base"
"""Downlink: version of the stored weights the float16 difference applies to (0: full weights)."""
VERSION_KEY = "weights-version"
"""Downlink: version of the weights the site holds after applying this message."""
LAYOUT_KEY = "weights-layout"
"""Downlink and uplink: names and shapes of the packed tensors (:meth:`Layout.to_text`)."""
PACKED_ARRAY = "packed"
"""The one array of a packed ArrayRecord."""

Weights = dict[str, np.ndarray]


def as_float32(array: np.ndarray) -> np.ndarray:
    """A float32 copy of ``array``."""
    return torch.from_numpy(array).to(torch.float32, copy=True).numpy()


def half_difference(new: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``float16(new - base)``, computed in float32."""
    return (torch.from_numpy(new).float() - torch.from_numpy(base)).half().numpy()


def add_half(base: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``base + float32(delta)``: the one formula both the hub and the sites compute."""
    return (torch.from_numpy(base) + torch.from_numpy(delta).float()).numpy()


def _malformed(what: str) -> FederationError:
    return FederationError(
        f"malformed packed weights: {what}",
        hint="the hub and the site must run the same GSCo version",
    )


def _is_entry(pair: object) -> bool:
    """``[name, [dim, ...]]``: a string and non-negative whole numbers (``bool`` is not one)."""
    if not isinstance(pair, list) or len(pair) != 2:
        return False
    name, shape = pair
    return (
        isinstance(name, str)
        and isinstance(shape, list)
        and all(type(dim) is int and dim >= 0 for dim in shape)
    )


@dataclass(frozen=True)
class Layout:
    """Names and shapes of the tensors packed, in this order, into one flat vector."""

    entries: tuple[tuple[str, tuple[int, ...]], ...]

    @classmethod
    def of(cls, weights: Mapping[str, np.ndarray]) -> Layout:
        return cls(tuple((name, tuple(value.shape)) for name, value in weights.items()))

    @classmethod
    def from_text(cls, text: str) -> Layout:
        """Parse :meth:`to_text`; anything but ``[[name, [dim, ...]], ...]`` with dims >= 0 is refused."""
        try:
            pairs = json.loads(text)
        except (TypeError, ValueError):
            pairs = None
        if not isinstance(pairs, list) or not all(_is_entry(pair) for pair in pairs):
            raise _malformed("the layout is not a list of [name, shape] pairs of whole numbers >= 0")
        if len({name for name, _ in pairs}) != len(pairs):
            raise _malformed("the layout names a tensor twice")
        return cls(tuple((name, tuple(shape)) for name, shape in pairs))

    def to_text(self) -> str:
        return json.dumps([[name, list(shape)] for name, shape in self.entries], separators=(",", ":"))

    @property
    def size(self) -> int:
        return sum(math.prod(shape) for _, shape in self.entries)  # exact: no int64 wrap-around

    def pack(self, weights: Mapping[str, np.ndarray]) -> np.ndarray:
        """``weights`` (same names and shapes) concatenated in this layout's order."""
        if {name: tuple(np.shape(value)) for name, value in weights.items()} != dict(self.entries):
            raise _malformed("tensor names or shapes differ from the layout")
        return np.concatenate([np.asarray(weights[name]).reshape(-1) for name, _ in self.entries])

    def check(self, vector: np.ndarray) -> np.ndarray:
        """``vector`` if it is flat and holds exactly this layout's values."""
        if vector.ndim != 1 or vector.size != self.size:
            raise _malformed(f"{vector.size} values for a layout of {self.size}")
        return vector

    def unpack(self, vector: np.ndarray) -> Weights:
        """The tensors of ``vector`` by name (views into it, no copies)."""
        self.check(vector)
        weights: Weights = {}
        offset = 0
        for name, shape in self.entries:
            count = math.prod(shape)
            weights[name] = vector[offset : offset + count].reshape(shape)
            offset += count
        return weights


def packed_record(vector: np.ndarray) -> ArrayRecord:
    return ArrayRecord({PACKED_ARRAY: Array(vector)})


def packed_vector(record: ArrayRecord, layout: Layout) -> np.ndarray:
    """The flat vector of a record made by :func:`packed_record`, checked against ``layout``."""
    if list(record.keys()) != [PACKED_ARRAY]:
        raise _malformed(f"expected one array named {PACKED_ARRAY!r}")
    return layout.check(record[PACKED_ARRAY].numpy())


def unpacked_record(vector: np.ndarray, layout: Layout) -> ArrayRecord:
    """Per-tensor record of ``vector``, as the ClientApp and the strategies expect."""
    return ArrayRecord(
        {name: Array(np.ascontiguousarray(value)) for name, value in layout.unpack(vector).items()}
    )


@dataclass(frozen=True)
class PackedWeights:
    """Float32 weights as one flat vector and the layout that names its parts."""

    layout: Layout
    vector: np.ndarray

    @classmethod
    def of(cls, weights: Mapping[str, np.ndarray]) -> PackedWeights:
        layout = Layout.of(weights)
        return cls(layout, as_float32(layout.pack(weights)))

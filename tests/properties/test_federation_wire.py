"""The federation wire format: a hostile layout or packed record is a FederationError, nothing else."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord
from hypothesis import given
from hypothesis import strategies as st

from specialist.federation.wire import PACKED_ARRAY, Layout, PackedWeights, packed_vector, unpacked_record
from tests.properties.hostile import HUGE_INTS, PROPERTY, WRONG_JSON, mutated_bytes, only_own_errors

VALID = PackedWeights.of({"conv.weight": np.ones((2, 3), np.float32), "fc.bias": np.zeros(4, np.float32)})
DIMS = st.sampled_from([-2, -1, 0, 1, 2, 3, 2**62, 2**64, float("inf"), float("nan"), 1.5, "2", None])
ENTRIES = st.lists(st.tuples(st.text(max_size=4), st.lists(DIMS | HUGE_INTS, max_size=3)), max_size=3)
HOSTILE_LAYOUTS = st.one_of(
    mutated_bytes(VALID.layout.to_text().encode()).map(lambda raw: raw.decode("utf-8", "replace")),
    ENTRIES.map(json.dumps),
    WRONG_JSON.map(lambda value: json.dumps(value)),
)
VECTORS = st.sampled_from([0, 1, 9, 10, 11]).map(lambda n: np.arange(n, dtype=np.float32)) | st.just(
    np.zeros((2, 5), np.float32)
)


def _receive(text: str, record: ArrayRecord) -> Any:
    """What a site or the hub does with a message: parse the layout, unpack the packed vector."""
    layout = Layout.from_text(text)
    return unpacked_record(packed_vector(record, layout), layout)


@PROPERTY
@given(text=HOSTILE_LAYOUTS, vector=VECTORS)
def test_a_hostile_layout_is_unpacked_exactly_or_refused(text: str, vector: np.ndarray) -> None:
    record = only_own_errors(lambda: _receive(text, ArrayRecord({PACKED_ARRAY: Array(vector)})))
    if record is not None:
        assert sum(array.numpy().size for array in record.values()) == vector.size


def _forged_size(entries: list[tuple[str, list[Any]]]) -> int:
    """The vector length a forger sends to match the layout's size in 64-bit arithmetic."""
    try:
        size = int(sum(np.prod(np.array(dims, dtype=np.int64)) for _, dims in entries))
    except (TypeError, ValueError, OverflowError):
        return 3
    return size if 0 <= size <= 64 else 3


@PROPERTY
@given(entries=ENTRIES)
def test_a_vector_that_matches_a_forged_layout_is_unpacked_exactly_or_refused(
    entries: list[tuple[str, list[Any]]],
) -> None:
    vector = np.arange(_forged_size(entries), dtype=np.float32)
    record = only_own_errors(
        lambda: _receive(json.dumps(entries), ArrayRecord({PACKED_ARRAY: Array(vector)}))
    )
    if record is not None:
        assert sum(array.numpy().size for array in record.values()) == vector.size


@PROPERTY
@given(name=st.text(max_size=8), vector=VECTORS)
def test_a_record_with_other_arrays_is_refused(name: str, vector: np.ndarray) -> None:
    record = ArrayRecord({name: Array(vector)}) if name != PACKED_ARRAY else ArrayRecord()
    only_own_errors(lambda: _receive(VALID.layout.to_text(), record))

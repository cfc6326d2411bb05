"""Half-precision, packed weights on the wire: the hub's SiteView and the site's mod agree exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid

from gsco_common.errors import FederationError
from hub.federation.rounds import Federation
from hub.federation.settings import RunSettings
from hub.federation.transport import SiteView
from site_agent.federation.encoding import half_precision_mod
from specialist.federation.flower import KEY_CLIPPING_NORM
from specialist.federation.wire import (
    BASE_KEY,
    ENCODING_KEY,
    FP16_DELTA,
    LAYOUT_KEY,
    PACKED_ARRAY,
    PACKED_FLOAT32,
    Layout,
    add_half,
    half_difference,
    packed_record,
)
from tests.federation.helpers import hub_message

RUN_ID = 4242


def weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "conv.weight": rng.normal(0, 0.1, (8, 3, 3, 3)).astype(np.float32),
        "bn.running_var": rng.uniform(0.5, 50.0, 8).astype(np.float32),
        "fc.bias": rng.normal(0, 1.0, 2).astype(np.float32),
    }


def message(content: RecordDict, run_id: int = RUN_ID, node_id: int = 7) -> Message:
    return hub_message(MessageType.TRAIN, content, run_id, node_id)


class FakeTraining:
    """Stands in for the ClientApp: records the weights it was given and moves them a little."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.seen: dict[str, np.ndarray] = {}
        self.sent: dict[str, np.ndarray] = {}
        self.calls = 0

    def __call__(self, msg: Message, context: Context) -> Message:
        self.calls += 1
        record = next(iter(msg.content.array_records.values()))
        self.seen = {key: array.numpy().copy() for key, array in record.items()}
        self.sent = {
            key: value + self.rng.normal(0, 0.01, value.shape).astype(np.float32)
            for key, value in self.seen.items()
        }
        arrays = ArrayRecord({key: Array(value) for key, value in self.sent.items()})
        return Message(RecordDict({"arrays": arrays}), reply_to=msg)


def view_weights(view: SiteView) -> dict[str, np.ndarray]:
    """What every site holds according to the hub (nothing before the first message)."""
    return {} if view.current is None else view.current.layout.unpack(view.current.vector)


def context() -> Context:
    return Context(run_id=RUN_ID, node_id=7, node_config={}, state=RecordDict(), run_config={})


def test_sites_rebuild_exactly_the_hubs_view_and_rounding_never_accumulates() -> None:
    rng = np.random.default_rng(0)
    truth = weights(rng)
    view = SiteView()
    site = FakeTraining(seed=1)
    for round_number in range(1, 6):
        previous = {key: value.copy() for key, value in view_weights(view).items()}
        outgoing, wire = view.outgoing(ArrayRecord({key: Array(value) for key, value in truth.items()}))
        assert list(outgoing.keys()) == [PACKED_ARRAY], "all tensors travel as one array"
        assert outgoing[PACKED_ARRAY].dtype == ("float32" if round_number == 1 else "float16")
        config = ConfigRecord({ENCODING_KEY: FP16_DELTA, **wire})
        reply = half_precision_mod(
            message(RecordDict({"arrays": outgoing, "config": config})), context(), site
        )
        assert not reply.has_error()
        held = view_weights(view)
        for key, value in truth.items():
            # The site trains from exactly the hub's view, and the view is within one message's
            # float16 rounding of the true global model (the error of earlier rounds is corrected).
            np.testing.assert_array_equal(site.seen[key], held[key])
            if round_number == 1:
                np.testing.assert_array_equal(held[key], value)
            else:
                bound = np.abs(value - previous[key]) * 2.0**-10 + 1e-6
                assert np.all(np.abs(value - held[key]) <= bound)
        sent = reply.content.array_records["arrays"]
        assert list(sent.keys()) == [PACKED_ARRAY] and sent[PACKED_ARRAY].dtype == "float16"
        decoded = view.decode_update(reply).content.array_records["arrays"]
        assert list(decoded.keys()) == list(truth.keys())
        for key, value in site.sent.items():
            np.testing.assert_allclose(decoded[key].numpy(), value, atol=2e-4)
        truth = {key: array.numpy() for key, array in decoded.items()}


def test_a_site_without_the_base_weights_answers_with_a_clear_error() -> None:
    view = SiteView()
    first, _ = view.outgoing(ArrayRecord({"w": Array(np.ones(4, dtype=np.float32))}))
    second, wire = view.outgoing(ArrayRecord({"w": Array(np.full(4, 2.0, dtype=np.float32))}))
    site = FakeTraining(seed=2)
    config = ConfigRecord({ENCODING_KEY: FP16_DELTA, **wire})
    reply = half_precision_mod(
        message(RecordDict({"arrays": second, "config": config}), run_id=999), context(), site
    )
    assert reply.has_error()
    assert "no longer holds the global model" in reply.error.reason
    assert reply.error.reason.startswith("[GSCO-")
    assert site.calls == 0, "a site must not train on weights it could not rebuild"


def test_without_compression_every_message_is_exact_float32() -> None:
    view = SiteView(exact=True)
    site = FakeTraining(seed=14)
    truth = weights(np.random.default_rng(15))
    for _ in range(2):
        outgoing, wire = view.outgoing(ArrayRecord({key: Array(value) for key, value in truth.items()}))
        assert outgoing[PACKED_ARRAY].dtype == "float32" and wire[BASE_KEY] == 0
        config = ConfigRecord({ENCODING_KEY: PACKED_FLOAT32, **wire})
        reply = half_precision_mod(
            message(RecordDict({"arrays": outgoing, "config": config}), run_id=90), context(), site
        )
        for key, value in truth.items():
            np.testing.assert_array_equal(site.seen[key], value)
        assert reply.content.array_records["arrays"][PACKED_ARRAY].dtype == "float32"
        decoded = view.decode_update(reply).content.array_records["arrays"]
        truth = {key: decoded[key].numpy() for key in truth}
        for key, value in site.sent.items():
            np.testing.assert_array_equal(truth[key], value)


def test_plain_weights_pass_through_unchanged() -> None:
    site = FakeTraining(seed=3)
    weights_in = ArrayRecord({"w": Array(np.arange(4, dtype=np.float32))})
    config = ConfigRecord({ENCODING_KEY: "none"})
    reply = half_precision_mod(message(RecordDict({"arrays": weights_in, "config": config})), context(), site)
    np.testing.assert_array_equal(site.seen["w"], np.arange(4, dtype=np.float32))
    assert reply.content.array_records["arrays"]["w"].dtype == "float32"
    assert "encoding" not in reply.content


def test_layout_packs_and_unpacks_by_name_and_rejects_other_shapes() -> None:
    tensors = weights(np.random.default_rng(4))
    layout = Layout.of(tensors)
    assert Layout.from_text(layout.to_text()) == layout
    reordered = dict(reversed(list(tensors.items())))
    vector = layout.pack(reordered)
    assert vector.shape == (layout.size,)
    for key, value in layout.unpack(vector).items():
        np.testing.assert_array_equal(value, tensors[key])
    with pytest.raises(FederationError, match="names or shapes"):
        layout.pack({**tensors, "fc.bias": np.zeros(3, dtype=np.float32)})
    with pytest.raises(FederationError, match="values for a layout"):
        layout.unpack(vector[:-1])
    with pytest.raises(FederationError, match="layout"):
        Layout.from_text("not json")


def test_float16_arithmetic_matches_numpy_bit_for_bit_on_tiny_changes() -> None:
    # torch does the conversions (numpy is ~100x slower on float16 subnormals); the results must
    # be exactly numpy's, including subnormals and values that round to zero.
    rng = np.random.default_rng(5)
    base = rng.normal(0, 0.1, 100_000).astype(np.float32)
    new = base + (rng.normal(0, 1, base.size) * np.logspace(-9, -2, base.size)).astype(np.float32)
    delta = half_difference(new, base)
    np.testing.assert_array_equal(delta, (new - base).astype(np.float16))
    np.testing.assert_array_equal(add_half(base, delta), base + delta.astype(np.float32))


def test_a_reply_that_does_not_fit_the_view_is_refused() -> None:
    view = SiteView()
    outgoing, wire = view.outgoing(
        ArrayRecord({key: Array(value) for key, value in weights(np.random.default_rng(6)).items()})
    )
    config = ConfigRecord({ENCODING_KEY: FP16_DELTA, **wire})
    reply = half_precision_mod(
        message(RecordDict({"arrays": outgoing, "config": config})), context(), FakeTraining(7)
    )
    reply.content["encoding"] = ConfigRecord(
        {ENCODING_KEY: FP16_DELTA, LAYOUT_KEY: Layout((("w", (3,)),)).to_text()}
    )
    with pytest.raises(FederationError, match="does not match"):
        view.decode_update(reply)


def _truncated(record: ArrayRecord, config: dict[str, int | str]) -> ArrayRecord:
    return packed_record(record[PACKED_ARRAY].numpy()[:3])


def _empty(record: ArrayRecord, config: dict[str, int | str]) -> ArrayRecord:
    return ArrayRecord()


def _without_layout(record: ArrayRecord, config: dict[str, int | str]) -> ArrayRecord:
    del config[LAYOUT_KEY]
    return record


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_truncated, "3 values for a layout of 4"),
        (_empty, "expected one array named 'packed'"),
        (_without_layout, "malformed packed weights"),
    ],
    ids=["truncated", "empty", "no-layout"],
)
def test_a_malformed_packed_message_gets_a_clear_error_reply(
    damage: Callable[[ArrayRecord, dict[str, int | str]], ArrayRecord], reason: str
) -> None:
    outgoing, wire = SiteView().outgoing(ArrayRecord({"w": Array(np.ones(4, dtype=np.float32))}))
    record = damage(outgoing, wire)
    site = FakeTraining(seed=13)
    config = ConfigRecord({ENCODING_KEY: FP16_DELTA, **wire})
    reply = half_precision_mod(
        message(RecordDict({"arrays": record, "config": config}), run_id=78), context(), site
    )
    assert reply.has_error() and reason in reply.error.reason
    assert site.calls == 0, "a site must not train on weights it could not read"


def test_the_round_drops_a_site_whose_update_cannot_be_decoded(tmp_path: Path) -> None:
    federation = Federation(
        grid=cast(Grid, None), settings=RunSettings(task="pneumonia", out_dir=str(tmp_path))
    )
    assert federation.view is not None
    outgoing, wire = federation.view.outgoing(ArrayRecord({"w": Array(np.ones(4, dtype=np.float32))}))
    config = ConfigRecord({ENCODING_KEY: FP16_DELTA, **wire})
    good = half_precision_mod(
        message(RecordDict({"arrays": outgoing, "config": config})), context(), FakeTraining(9)
    )
    bad = half_precision_mod(
        message(RecordDict({"arrays": outgoing, "config": config}), node_id=8), context(), FakeTraining(10)
    )
    bad.content["encoding"] = ConfigRecord({ENCODING_KEY: FP16_DELTA, LAYOUT_KEY: "[]"})
    failed: dict[int, str] = {}
    decoded = federation._decoded([good, bad], failed)
    assert decoded == [good] and good.content.array_records["arrays"]["w"].dtype == "float32"
    assert list(failed) == [8] and "does not match" in failed[8]


def test_a_dp_clipped_update_is_sent_exactly_never_rounded() -> None:
    # Rounding after clipping could lift the update's norm above the clipping norm that the
    # hub's noise is calibrated to, so a DP reply carries the packed float32 weights.
    view = SiteView()
    truth = weights(np.random.default_rng(11))
    outgoing, wire = view.outgoing(ArrayRecord({key: Array(value) for key, value in truth.items()}))
    site = FakeTraining(seed=12)
    config = ConfigRecord({ENCODING_KEY: FP16_DELTA, KEY_CLIPPING_NORM: 0.5, **wire})
    reply = half_precision_mod(
        message(RecordDict({"arrays": outgoing, "config": config}), run_id=88), context(), site
    )
    assert not reply.has_error(), reply.error.reason
    sent = reply.content.array_records["arrays"]
    assert list(sent.keys()) == [PACKED_ARRAY] and sent[PACKED_ARRAY].dtype == "float32"
    assert reply.content.config_records["encoding"][ENCODING_KEY] == PACKED_FLOAT32
    decoded = view.decode_update(reply).content.array_records["arrays"]
    for key, value in site.sent.items():
        np.testing.assert_array_equal(decoded[key].numpy(), value)

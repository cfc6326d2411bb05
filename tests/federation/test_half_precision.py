"""Half-precision weights on the wire: the hub's SiteView and the site's mod agree exactly."""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict

from hub.federation.transport import SiteView, decode_update
from site_agent.federation.encoding import ENCODING_KEY, FP16_DELTA, half_precision_mod
from tests.federation.helpers import hub_message

RUN_ID = 4242


def weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "conv.weight": rng.normal(0, 0.1, (8, 3, 3, 3)).astype(np.float32),
        "bn.running_var": rng.uniform(0.5, 50.0, 8).astype(np.float32),
        "fc.bias": rng.normal(0, 1.0, 2).astype(np.float32),
    }


def message(content: RecordDict, run_id: int = RUN_ID) -> Message:
    return hub_message(MessageType.TRAIN, content, run_id)


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


def context() -> Context:
    return Context(run_id=RUN_ID, node_id=7, node_config={}, state=RecordDict(), run_config={})


def test_sites_rebuild_exactly_the_hubs_view_and_rounding_never_accumulates() -> None:
    rng = np.random.default_rng(0)
    truth = weights(rng)
    view = SiteView()
    site = FakeTraining(seed=1)
    for round_number in range(1, 6):
        previous = {key: value.copy() for key, value in view.weights.items()}
        outgoing, wire = view.outgoing(ArrayRecord({key: Array(value) for key, value in truth.items()}))
        dtypes = {array.dtype for array in outgoing.values()}
        assert dtypes == ({"float32"} if round_number == 1 else {"float16"})
        config = ConfigRecord({ENCODING_KEY: FP16_DELTA, **wire})
        reply = half_precision_mod(
            message(RecordDict({"arrays": outgoing, "config": config})), context(), site
        )
        assert not reply.has_error()
        for key, value in truth.items():
            # The site trains from exactly the hub's view, and the view is within one message's
            # float16 rounding of the true global model (the error of earlier rounds is corrected).
            np.testing.assert_array_equal(site.seen[key], view.weights[key])
            if round_number == 1:
                np.testing.assert_array_equal(view.weights[key], value)
            else:
                bound = np.abs(value - previous[key]) * 2.0**-10 + 1e-6
                assert np.all(np.abs(value - view.weights[key]) <= bound)
        assert {array.dtype for array in reply.content.array_records["arrays"].values()} == {"float16"}
        decoded = decode_update(reply, view.weights).content.array_records["arrays"]
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


def test_without_compression_weights_pass_through_unchanged() -> None:
    site = FakeTraining(seed=3)
    weights_in = ArrayRecord({"w": Array(np.arange(4, dtype=np.float32))})
    config = ConfigRecord({ENCODING_KEY: "none"})
    reply = half_precision_mod(message(RecordDict({"arrays": weights_in, "config": config})), context(), site)
    np.testing.assert_array_equal(site.seen["w"], np.arange(4, dtype=np.float32))
    assert reply.content.array_records["arrays"]["w"].dtype == "float32"
    assert "encoding" not in reply.content

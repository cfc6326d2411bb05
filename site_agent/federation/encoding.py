"""Half-precision, packed weights on the wire, both ways (the site's side).

Weights cross three hops each way (ServerApp -> SuperLink -> SuperNode -> task gate and back),
tens of MB per message for resnet18, and on loopback the copying, hashing and per-object
requests are most of a round's fixed cost. The hub's messages carry weights packed into one flat
array with its layout in the config (:mod:`specialist.federation.wire`: a few objects per message instead of
hundreds), and both directions carry float16 *differences* instead of float32 weights (half the
bytes) unless the run asks for exact weights:

* downlink (``weights-base`` / ``weights-version`` / ``weights-layout`` in the message's config):
  the first message of a run carries full float32 weights; later ones carry
  ``float16(global - previous)``, where ``previous`` is exactly what every site rebuilt from the
  last message. The site adds the difference to its stored copy (kept per run in this
  long-lived process, :mod:`.gate`) and hands the ClientApp ordinary per-tensor weights. The hub
  computes the same float32 sum (:class:`hub.federation.transport.SiteView`), so the rounding of
  one message is corrected by the next and never accumulates. A site without the right stored
  copy (it restarted mid-run) answers with an error and leaves the run.
* uplink (``update-encoding = "fp16-delta"``; ``"packed-float32"`` asks for exact float32
  weights, packed): the reply carries ``float16(weights - incoming)``,
  packed in the incoming layout; the hub adds it back to the same ``incoming`` before
  aggregating (:meth:`hub.federation.transport.SiteView.decode_update`). The rounding error is
  2^-11 of one round's change, far below the change itself. The mod runs outermost, so DP
  clipping always sees full weights and the full update; a clipped update is never rounded
  afterwards (that could lift its norm above the clipping norm): it goes as the packed float32
  weights instead (``packed-float32``).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MessageType

from gsco_common.errors import FederationError
from site_agent.federation.replies import error_reply
from specialist.federation.flower import KEY_CLIPPING_NORM, ClientAppCallable
from specialist.federation.wire import (
    BASE_KEY,
    ENCODING_KEY,
    ENCODING_RECORD,
    FP16_DELTA,
    LAYOUT_KEY,
    PACKED_FLOAT32,
    VERSION_KEY,
    Layout,
    PackedWeights,
    add_half,
    as_float32,
    half_difference,
    packed_record,
    packed_vector,
    unpacked_record,
)

KEPT_RUNS = 4

_STORED: OrderedDict[int, tuple[int, np.ndarray]] = OrderedDict()
"""Per run: the version and float32 vector this site rebuilt from the hub's last message."""


def _config(msg: Message) -> ConfigRecord | None:
    records = list(msg.content.config_records.values())
    return records[0] if len(records) == 1 else None


def _incoming_weights(msg: Message, config: ConfigRecord) -> PackedWeights:
    """Full float32 weights of a packed message (rebuilt from the stored copy for a difference).

    The message then carries them per tensor, as the ClientApp expects.
    """
    records = list(msg.content.array_records.items())
    if len(records) != 1:
        raise FederationError("expected exactly one weights record from the hub")
    name, record = records[0]
    run_id, base = msg.metadata.run_id, int(config.get(BASE_KEY, 0))
    layout = Layout.from_text(str(config.get(LAYOUT_KEY, "")))
    received = packed_vector(record, layout)
    if base == 0:
        vector = as_float32(received)
    else:
        stored = _STORED.get(run_id)
        if stored is None or stored[0] != base:
            raise FederationError(
                "this site no longer holds the global model the hub's update builds on "
                "(the site agent restarted during the run)",
                hint="the site leaves this run and can take part in the next one",
            )
        vector = add_half(stored[1], received)
    msg.content[name] = unpacked_record(vector, layout)
    _STORED[run_id] = (int(config[VERSION_KEY]), vector)
    _STORED.move_to_end(run_id)
    while len(_STORED) > KEPT_RUNS:
        _STORED.popitem(last=False)
    return PackedWeights(layout, vector)


def _compact_reply(reply: Message, incoming: PackedWeights, *, exact: bool) -> None:
    """Replace the reply's weights by ``float16(weights - incoming)``, packed like ``incoming``.

    ``exact``: by the packed float32 weights themselves (a DP-clipped update).
    """
    name, outgoing = next(iter(reply.content.array_records.items()))
    vector = incoming.layout.pack({key: array.numpy() for key, array in outgoing.items()})
    if exact:
        record, encoding = packed_record(as_float32(vector)), PACKED_FLOAT32
    else:
        record, encoding = packed_record(half_difference(vector, incoming.vector)), FP16_DELTA
    reply.content[name] = record
    reply.content[ENCODING_RECORD] = ConfigRecord(
        {ENCODING_KEY: encoding, LAYOUT_KEY: incoming.layout.to_text()}
    )


def half_precision_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Rebuild incoming weights from a packed message and send a packed update, as the hub asked.

    Messages without ``weights-version`` carry plain per-tensor weights and pass through.
    """
    config = _config(msg)
    if config is None or VERSION_KEY not in config:
        return call_next(msg, context)
    try:
        incoming = _incoming_weights(msg, config)
    except FederationError as exc:
        return error_reply(msg, exc)
    reply = call_next(msg, context)
    requested = config.get(ENCODING_KEY)
    if (
        msg.metadata.message_type != MessageType.TRAIN
        or requested not in (FP16_DELTA, PACKED_FLOAT32)
        or reply.has_error()
        or len(reply.content.array_records) != 1
    ):
        return reply
    try:
        _compact_reply(reply, incoming, exact=requested == PACKED_FLOAT32 or KEY_CLIPPING_NORM in config)
    except FederationError as exc:
        return error_reply(msg, exc)
    return reply

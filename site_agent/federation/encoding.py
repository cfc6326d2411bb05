"""Half-precision weights on the wire, both ways (the site's side).

Weights cross three hops each way (ServerApp -> SuperLink -> SuperNode -> task gate and back),
tens of MB per message for resnet18, and on loopback the copying and hashing of those bytes is
most of a round's fixed cost. When the hub asks for it, both directions carry float16
*differences* instead of float32 weights, half the bytes:

* downlink (``weights-base`` / ``weights-version`` in the message's config): the first message of
  a run carries full weights; later ones carry ``float16(global - previous)``, where ``previous``
  is exactly what every site rebuilt from the last message. The site adds the difference to its
  stored copy (kept per run in this long-lived process, :mod:`.gate`). The hub computes the same
  float32 sum (:class:`hub.federation.transport.SiteView`), so the rounding of one message is
  corrected by the next and never accumulates. A site without the right stored copy (it
  restarted mid-run) answers with an error and leaves the run.
* uplink (``update-encoding = "fp16-delta"``): the reply carries ``float16(weights - incoming)``;
  the hub adds it back to the same ``incoming`` before aggregating
  (:func:`hub.federation.transport.decode_update`). The rounding error is 2^-11 of one round's
  change, far below the change itself. The mod runs outermost, so DP clipping always sees full
  weights and the full update.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType
from flwr.clientapp.typing import ClientAppCallable

from registry.errors import FederationError
from site_agent.federation.replies import error_reply

ENCODING_KEY = "update-encoding"
FP16_DELTA = "fp16-delta"
ENCODING_RECORD = "encoding"
BASE_KEY = "weights-base"
"""Downlink: version of the stored weights the float16 difference applies to (0: full weights)."""
VERSION_KEY = "weights-version"
"""Downlink: version of the weights the site holds after applying this message."""
KEPT_RUNS = 4

Weights = dict[str, np.ndarray]
_STORED: OrderedDict[int, tuple[int, Weights]] = OrderedDict()
"""Per run: the version and float32 weights this site rebuilt from the hub's last message."""


def apply_delta(base: Weights, delta: ArrayRecord) -> Weights:
    """``base + float32(delta)``: the one formula both the hub and the sites compute."""
    return {key: base[key] + array.numpy().astype(np.float32) for key, array in delta.items()}


def _config(msg: Message) -> ConfigRecord | None:
    records = list(msg.content.config_records.values())
    return records[0] if len(records) == 1 else None


def _incoming_weights(msg: Message, config: ConfigRecord) -> Weights | None:
    """Full float32 weights of the message (rebuilt from the stored copy when it carries a difference)."""
    if len(msg.content.array_records) != 1:
        return None
    name, record = next(iter(msg.content.array_records.items()))
    if VERSION_KEY not in config:
        return {key: array.numpy() for key, array in record.items()}
    run_id, base = msg.metadata.run_id, int(config.get(BASE_KEY, 0))
    if base == 0:
        weights = {key: array.numpy().astype(np.float32) for key, array in record.items()}
    else:
        stored = _STORED.get(run_id)
        if stored is None or stored[0] != base:
            raise FederationError(
                "this site no longer holds the global model the hub's update builds on "
                "(the site agent restarted during the run)",
                hint="the site leaves this run and can take part in the next one",
            )
        weights = apply_delta(stored[1], record)
        msg.content[name] = ArrayRecord({key: Array(value) for key, value in weights.items()})
    _STORED[run_id] = (int(config[VERSION_KEY]), weights)
    _STORED.move_to_end(run_id)
    while len(_STORED) > KEPT_RUNS:
        _STORED.popitem(last=False)
    return weights


def _compact_reply(reply: Message, incoming: Weights) -> None:
    """Replace the reply's weights by ``float16(weights - incoming)``."""
    name, outgoing = next(iter(reply.content.array_records.items()))
    reply.content[name] = ArrayRecord(
        {key: Array((array.numpy() - incoming[key]).astype(np.float16)) for key, array in outgoing.items()}
    )
    reply.content[ENCODING_RECORD] = ConfigRecord({ENCODING_KEY: FP16_DELTA})


def half_precision_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Rebuild incoming weights from a float16 difference and send float16 updates, as the hub asked."""
    config = _config(msg)
    if config is None:
        return call_next(msg, context)
    compact = msg.metadata.message_type == MessageType.TRAIN and config.get(ENCODING_KEY) == FP16_DELTA
    incoming = None
    if compact or VERSION_KEY in config:
        try:
            incoming = _incoming_weights(msg, config)
        except FederationError as exc:
            return error_reply(msg, exc)
    reply = call_next(msg, context)
    if compact and incoming is not None and not reply.has_error() and len(reply.content.array_records) == 1:
        _compact_reply(reply, incoming)
    return reply

"""Half-precision model updates on the way back to the hub.

A site's reply carries its whole model (tens of MB) through three hops (task gate -> SuperNode
-> SuperLink -> ServerApp). When the hub asks for it (``update-encoding = "fp16-delta"`` in the
training config), :func:`fp16_update_mod` replaces the reply's weights by their difference from
the global model the site received, in float16: half the bytes, and the rounding error
(2^-11 of one round's change) is far below the change itself. The hub adds the difference back
to the global model before aggregating (:func:`hub.federation.transport.decode_update`). The
mod runs outermost, after DP clipping, so clipping always sees the full update.
"""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType
from flwr.clientapp.typing import ClientAppCallable

ENCODING_KEY = "update-encoding"
FP16_DELTA = "fp16-delta"
ENCODING_RECORD = "encoding"


def _requested(msg: Message) -> bool:
    return msg.metadata.message_type == MessageType.TRAIN and any(
        record.get(ENCODING_KEY) == FP16_DELTA for record in msg.content.config_records.values()
    )


def fp16_update_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Send ``float16(weights - global)`` instead of the weights when the hub asked for it."""
    reply = call_next(msg, context)
    if not _requested(msg) or reply.has_error() or len(msg.content.array_records) != 1:
        return reply
    incoming = next(iter(msg.content.array_records.values()))
    name, outgoing = next(iter(reply.content.array_records.items()))
    reply.content[name] = ArrayRecord(
        {
            key: Array((array.numpy() - incoming[key].numpy()).astype(np.float16))
            for key, array in outgoing.items()
        }
    )
    reply.content[ENCODING_RECORD] = ConfigRecord({ENCODING_KEY: FP16_DELTA})
    return reply

"""Getting site replies from the SuperLink quickly, and the hub's side of half-precision weights.

A reply becomes visible on the SuperLink as soon as its SuperNode pushes the message header,
while the weights (tens of MB) are still being uploaded. Flower's ``HttpGrid.pull_messages``
then retries each missing object after 1 s, doubling up to 10 s, which added several seconds
to every round here. :func:`pull_replies` does the same pull through the grid's Runtime API
client, retrying after 50 ms up to 0.5 s. It relies on ``HttpGrid``'s client attribute; with
any other grid (or a Flower version without it) it falls back to the public ``pull_messages``.

:class:`SiteView` sends the global model as float16 differences from what the sites already
hold, and :func:`decode_update` restores full weights from the float16 updates sites send (the
wire format is described in :mod:`site_agent.federation.encoding`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, Message
from flwr.proto.runtime_pb2 import PullAppMessagesRequest  # pylint: disable=no-name-in-module
from flwr.serverapp import Grid
from flwr.supercore.inflatable.inflatable_protobuf_utils import (
    make_confirm_message_received_fn_protobuf,
    make_pull_object_fn_protobuf,
)
from flwr.supercore.inflatable.inflatable_utils import ObjectPullError, pull_and_inflate_object_from_tree

from site_agent.federation.encoding import (
    BASE_KEY,
    ENCODING_KEY,
    ENCODING_RECORD,
    FP16_DELTA,
    VERSION_KEY,
    Weights,
    apply_delta,
)

PULL_BACKOFF_S = (0.05, 0.5)


def pull_replies(grid: Grid, message_ids: Iterable[str]) -> tuple[list[Message], dict[str, str]]:
    """Replies to ``message_ids`` available now, and why others' replies could not be read.

    The second value maps the id of the message whose reply failed to download to the reason.
    """
    client = getattr(grid, "_runtime_client", None)
    node = getattr(grid, "node", None)
    if client is None or node is None:
        return list(grid.pull_messages(message_ids)), {}
    run_id = grid.run.run_id
    response = client.PullMessages(PullAppMessagesRequest(message_ids=list(message_ids)))
    replies: list[Message] = []
    failed: dict[str, str] = {}
    for proto, tree in zip(response.messages_list, response.message_object_trees, strict=True):
        try:
            message = pull_and_inflate_object_from_tree(
                tree,
                make_pull_object_fn_protobuf(client.PullObject, node, run_id),
                make_confirm_message_received_fn_protobuf(client.ConfirmMessageReceived, node, run_id),
                return_type=Message,
                initial_backoff=PULL_BACKOFF_S[0],
                backoff_cap=PULL_BACKOFF_S[1],
            )
        except ObjectPullError:
            failed[proto.metadata.reply_to_message_id] = "the site's reply could not be downloaded"
            continue
        message.metadata.__dict__["_message_id"] = tree.object_id
        replies.append(message)
    return replies, failed


class SiteView:
    """The float32 weights every participating site holds, and the messages that update them.

    The first call of :meth:`outgoing` sends full weights; later calls send the float16
    difference between the new global model and this view, then advance the view by exactly the
    sum each site computes. Every site of a run receives every message (a site that misses one
    has left the run), so one view serves them all.
    """

    def __init__(self) -> None:
        self.version = 0
        self.weights: Weights = {}

    def outgoing(self, arrays: ArrayRecord) -> tuple[ArrayRecord, dict[str, int]]:
        """The record to send for ``arrays`` and the config entries that say how to read it."""
        base = self.version
        if base == 0:
            record = arrays
            self.weights = {key: array.numpy().astype(np.float32) for key, array in arrays.items()}
        else:
            record = ArrayRecord(
                {
                    key: Array((array.numpy() - self.weights[key]).astype(np.float16))
                    for key, array in arrays.items()
                }
            )
            self.weights = apply_delta(self.weights, record)
        self.version += 1
        return record, {BASE_KEY: base, VERSION_KEY: self.version}


def decode_update(reply: Message, incoming: Weights) -> Message:
    """Turn a site's float16 difference from the weights it received back into float32 weights.

    Plain replies are returned unchanged (``update-encoding = "fp16-delta"`` was not asked for).
    """
    encoding = reply.content.config_records.get(ENCODING_RECORD)
    if encoding is None or encoding.get(ENCODING_KEY) != FP16_DELTA:
        return reply
    name, delta = next(iter(reply.content.array_records.items()))
    weights = apply_delta(incoming, delta)
    reply.content[name] = ArrayRecord({key: Array(value) for key, value in weights.items()})
    del reply.content[ENCODING_RECORD]
    return reply

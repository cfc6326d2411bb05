"""Getting site replies from the SuperLink quickly, and the hub's side of half-precision weights.

A reply becomes visible on the SuperLink as soon as its SuperNode pushes the message header,
while the weights (tens of MB) are still being uploaded. Flower's ``HttpGrid.pull_messages``
then retries each missing object after 1 s, doubling up to 10 s, which added several seconds
to every round here. :func:`pull_replies` does the same pull through the grid's Runtime API
client, retrying after 50 ms up to 0.5 s. It relies on ``HttpGrid``'s client attribute; with
any other grid (or a Flower version without it) it falls back to the public ``pull_messages``.

:class:`SiteView` sends the global model as packed float16 differences from what the sites
already hold, and restores full weights from the packed float16 updates sites send (the wire
format is described in :mod:`site_agent.federation.encoding`).
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, Message
from flwr.serverapp import Grid

from gsco_common.errors import FederationError
from specialist.federation import wire
from specialist.federation.flower import (
    ObjectPullError,
    PullAppMessagesRequest,
    grid_connection,
    make_confirm_message_received_fn_protobuf,
    make_pull_object_fn_protobuf,
    pull_and_inflate_object_from_tree,
)

PULL_BACKOFF_S = (0.05, 0.5)


def pull_replies(grid: Grid, message_ids: Iterable[str]) -> tuple[list[Message], dict[str, str]]:
    """Replies to ``message_ids`` available now, and why others' replies could not be read.

    The second value maps the id of the message whose reply failed to download to the reason.
    """
    connection = grid_connection(grid)
    if connection is None:
        return list(grid.pull_messages(message_ids)), {}
    client, node = connection
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
    has left the run), so one view serves them all. ``exact`` (``compress-updates = false``)
    sends full float32 weights every time. Both directions are packed (:mod:`specialist.federation.wire`).
    """

    def __init__(self, *, exact: bool = False) -> None:
        self.exact = exact
        self.version = 0
        self.current: wire.PackedWeights | None = None

    def outgoing(self, arrays: ArrayRecord) -> tuple[ArrayRecord, dict[str, int | str]]:
        """The record to send for ``arrays`` and the config entries that say how to read it."""
        base = self.version
        target = wire.PackedWeights.of({key: array.numpy() for key, array in arrays.items()})
        if self.exact or self.current is None or self.current.layout != target.layout:
            base, payload = 0, target.vector
            self.current = target
        else:
            payload = wire.half_difference(target.vector, self.current.vector)
            self.current = wire.PackedWeights(target.layout, wire.add_half(self.current.vector, payload))
        self.version += 1
        config: dict[str, int | str] = {
            wire.BASE_KEY: base,
            wire.VERSION_KEY: self.version,
            wire.LAYOUT_KEY: target.layout.to_text(),
        }
        return wire.packed_record(payload), config

    def decode_update(self, reply: Message) -> Message:
        """Turn a site's packed update back into per-tensor float32 weights.

        The update is a float16 difference from this view, or the exact float32 weights (after
        DP clipping, or when asked for). Plain replies are returned unchanged (a site that was
        not asked for a packed update). Raises :class:`FederationError` for a reply that does
        not fit the view.
        """
        encoding = reply.content.config_records.get(wire.ENCODING_RECORD)
        if encoding is None or (kind := encoding.get(wire.ENCODING_KEY)) not in (
            wire.FP16_DELTA,
            wire.PACKED_FLOAT32,
        ):
            return reply
        layout = wire.Layout.from_text(str(encoding.get(wire.LAYOUT_KEY, "")))
        records = list(reply.content.array_records.items())
        if len(records) != 1 or self.current is None or layout != self.current.layout:
            raise FederationError("a site's update does not match the weights the hub sent it")
        name, record = records[0]
        received = wire.packed_vector(record, layout)
        if kind == wire.FP16_DELTA:
            weights = wire.add_half(self.current.vector, received)
        else:
            weights = wire.as_float32(received)
        reply.content[name] = wire.unpacked_record(weights, layout)
        del reply.content[wire.ENCODING_RECORD]
        return reply

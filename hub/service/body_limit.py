"""A cap on every request body's size and on its pauses, enforced before any route reads it.

FastAPI reads a JSON body (``POST /v1/diagnoses/{id}/review``) whole, and before the route's
token check runs: without a cap, anyone could make the hub hold gigabytes without signing in.
This middleware reads a body of any other route itself, up to ``SMALL_BODY_BYTES``, refuses one
larger with 413 (declared larger, at once), and hands the route what it read. The routes that
take large bodies read them as a capped stream themselves (``form.read_capped``: the upload
forms, the MLflow webhook) and are passed through, their ``receive`` timed.

Every body, streamed or not, must keep arriving: a pause longer than ``idle_timeout_s`` between
two pieces of it is answered with 408 (``RequestTimeoutError``). Without it, a client that sends
a few bytes and then nothing holds a connection and a coroutine for as long as it likes (a
slow-body attack), and uvicorn has no such limit of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gsco_common.errors import PayloadTooLargeError, RequestTimeoutError
from hub.service.responses import gsco_error_response

SMALL_BODY_BYTES = 64 * 1024


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimit:
    """Refuse bodies over ``SMALL_BODY_BYTES`` and bodies that pause longer than ``idle_timeout_s``.

    The size is left to the ``streamed`` (method, path) routes themselves; the pauses never are.
    """

    def __init__(self, app: ASGIApp, streamed: Collection[tuple[str, str]], idle_timeout_s: float) -> None:
        self.app = app
        self.streamed = frozenset(streamed)
        self.idle_timeout_s = idle_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        receive = _timed(receive, self.idle_timeout_s)
        if (scope["method"], scope["path"]) in self.streamed:
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > SMALL_BODY_BYTES:
            await self._refuse(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            try:
                message = await receive()
            except RequestTimeoutError as stalled:
                await gsco_error_response(stalled)(scope, receive, send)
                return
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > SMALL_BODY_BYTES:
                await self._refuse(scope, receive, send)
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
        refused = PayloadTooLargeError(
            f"the request body is larger than the limit of {SMALL_BODY_BYTES // 1024} KiB for this route",
            hint="send the fields the API describes, nothing more",
        )
        await gsco_error_response(refused)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then waits on the connection as before."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _timed(receive: Receive, idle_timeout_s: float) -> Receive:
    """A ``receive`` that raises ``RequestTimeoutError`` when a piece of the body is ``idle_timeout_s`` late.

    Only while the body is arriving: once it is whole (or the client left), ``receive`` waits
    for the disconnect, which may take as long as the answer does.
    """
    arriving = True

    async def timed() -> Message:
        nonlocal arriving
        if not arriving:
            return await receive()
        try:
            message = await asyncio.wait_for(receive(), idle_timeout_s)
        except TimeoutError:
            arriving = False
            raise RequestTimeoutError(
                f"no part of the request body arrived for {idle_timeout_s:g} s",
                hint="send the whole request without pausing; on a slow link, raise body_timeout_s",
            ) from None
        arriving = message["type"] == "http.request" and message.get("more_body", False)
        return message

    return timed

"""Error replies a site sends to the hub: the error's code and plain message, nothing else."""

from __future__ import annotations

from flwr.app import Error, Message

from gsco_common.errors import GscoError
from specialist.federation.flower import ErrorCode


def error_reply(msg: Message, exc: GscoError) -> Message:
    """Answer ``msg`` with ``exc``'s code and message (never a traceback, path or data value)."""
    reason = f"[{exc.code}] {exc.message}"
    return Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=msg)

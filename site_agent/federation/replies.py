"""Error replies a site sends to the hub: the error's code and a message that names no data.

What the federation code itself refuses (:class:`FederationError`: another task, a model that
does not match, a spent DP-SGD budget, too few training images) is said to the hub as it is:
those messages are made of the run's settings and counts the hub may see. Any other error comes
from reading the site's configuration, files or data, and its message may name a file or quote a
value (a DICOM file named after the patient, a label cell holding a name): the hub gets its code
and its kind only, and the whole message goes to the site's own log.
"""

from __future__ import annotations

import logging

from flwr.app import Error, Message

from gsco_common.errors import FederationError, GscoError
from specialist.federation.flower import ErrorCode

log = logging.getLogger(__name__)


def hub_reason(exc: GscoError) -> str:
    """What the hub is told of ``exc``: its code and, unless the federation code raised it, its kind."""
    if isinstance(exc, FederationError):
        return f"[{exc.code}] {exc.message}"
    kind = (type(exc).__doc__ or type(exc).__name__).strip().splitlines()[0]
    return f"[{exc.code}] {kind} (the site's log says which)"


def error_reply(msg: Message, exc: GscoError) -> Message:
    """Answer ``msg`` with :func:`hub_reason` of ``exc``; log the whole error at the site."""
    log.warning("refused the hub's %s message: [%s] %s", msg.metadata.message_type, exc.code, exc)
    return Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=hub_reason(exc)), reply_to=msg)

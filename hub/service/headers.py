"""Response headers that keep clinical answers out of caches and the page out of other sites' frames.

The page's own Content-Security-Policy (scripts, styles, images from the hub only) is in its
``<meta>`` tag; a ``<meta>`` policy cannot forbid framing, so ``frame-ancestors`` comes here, with
``X-Frame-Options`` for browsers that predate it: a page that can confirm an AI label must not be
clickjacked. API answers hold patient results, so no browser, proxy or shared workstation may
store them.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders

EVERY_RESPONSE = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
API_RESPONSE = {"Cache-Control": "no-store"}
API_PREFIX = "/v1/"


def add_protective_headers(path: str, headers: MutableHeaders) -> None:
    """Set the headers every answer gets, and ``no-store`` on the API's (``/v1/…``)."""
    headers.update(EVERY_RESPONSE)
    if path.startswith(API_PREFIX):
        headers.update(API_RESPONSE)

"""MLflow model-registry webhooks (MLflow >= 3.3): HMAC-SHA256 verification.

MLflow signs ``"{delivery id}.{timestamp}.{body}"`` with the webhook's secret and sends
``X-MLflow-Signature: v1,<base64 digest>``, ``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp``.
A delivery is accepted only when the signature matches and the timestamp is recent (replays of
an old delivery are refused). The hub treats an accepted delivery as a hint to refresh.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from gsco_common.errors import AuthError

SIGNATURE_HEADER = "x-mlflow-signature"
DELIVERY_HEADER = "x-mlflow-delivery-id"
TIMESTAMP_HEADER = "x-mlflow-timestamp"
VERSION = "v1"
MAX_TIMESTAMP_DIGITS = 12


def signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow sends for this delivery."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode('ascii')}"


def _unix_seconds(timestamp: str) -> bool:
    """ASCII digits, few enough for ``int`` (it refuses "²", which ``isdigit`` accepts, and 4,300+ digits)."""
    return timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS


def verify(secret: str | None, headers: dict[str, str], body: bytes, max_age_s: int) -> None:
    """Accept a signed, recent delivery; ``AuthError`` (401) otherwise."""
    if not secret:
        raise AuthError("webhooks are not enabled on this hub", hint="set webhook_secret in the hub config")
    sent = headers.get(SIGNATURE_HEADER, "")
    delivery_id = headers.get(DELIVERY_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    if not sent or not delivery_id or not _unix_seconds(timestamp):
        raise AuthError("the webhook signature headers are missing or malformed")
    if abs(time.time() - int(timestamp)) > max_age_s:
        raise AuthError("the webhook delivery is too old")
    if not hmac.compare_digest(sent, signature(secret, delivery_id, timestamp, body)):
        raise AuthError("the webhook signature does not match")

"""The multipart form of ``POST /v1/diagnoses``, read in memory with a size cap.

Starlette spools uploaded files over 1 MB to a temporary file; uploaded images must never touch
the disk, so the body is read here as a stream (refused with 413 as soon as it passes the cap)
and split with the standard library's MIME parser.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP

from gsco_common.errors import PayloadTooLargeError, RequestError

FORM_OVERHEAD = 64 * 1024
FORM_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image", "task_id"],
                    "properties": {
                        "image": {"type": "string", "format": "binary", "description": "PNG, JPEG or DICOM"},
                        "task_id": {"type": "string"},
                        "k": {"type": "integer", "minimum": 1, "maximum": 100},
                        "generalist": {"type": "boolean"},
                    },
                }
            }
        },
    }
}


@dataclass(frozen=True)
class DiagnosisForm:
    image: bytes
    task_id: str
    k: int | None
    generalist: bool


async def read_capped(stream: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole body, or ``PayloadTooLargeError`` once more than ``limit`` bytes arrived."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(
                f"the upload is larger than the limit of {(limit - FORM_OVERHEAD) // (1024 * 1024)} MB",
                hint="send a smaller image",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _parts(content_type: str, body: bytes) -> dict[str, Message]:
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise RequestError("the request must be multipart/form-data", hint="send the image as a form field")
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise RequestError("the multipart body cannot be parsed")
    parts: dict[str, Message] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            parts.setdefault(name, part)
    return parts


def _text(part: Message | None) -> str | None:
    if part is None:
        return None
    payload = part.get_payload(decode=True)
    return payload.decode("utf-8", errors="replace").strip() if isinstance(payload, bytes) else None


def parse_form(content_type: str, body: bytes) -> DiagnosisForm:
    """Fields ``image`` (file), ``task_id``, optional ``k`` and ``generalist``; 422 on anything wrong."""
    parts = _parts(content_type, body)
    image_part = parts.get("image")
    image = image_part.get_payload(decode=True) if image_part is not None else None
    if not isinstance(image, bytes):
        raise RequestError("the form field 'image' is missing", hint="attach a PNG, JPEG or DICOM file")
    task_id = _text(parts.get("task_id"))
    if not task_id:
        raise RequestError("the form field 'task_id' is missing")
    k_text = _text(parts.get("k"))
    k = None
    if k_text:
        if not k_text.isdigit() or not 1 <= int(k_text) <= 100:
            raise RequestError("the form field 'k' must be an integer from 1 to 100")
        k = int(k_text)
    generalist_text = (_text(parts.get("generalist")) or "true").lower()
    if generalist_text not in ("true", "false", "1", "0"):
        raise RequestError("the form field 'generalist' must be true or false")
    return DiagnosisForm(image, task_id, k, generalist_text in ("true", "1"))

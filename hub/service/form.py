"""The multipart form of ``POST /v1/diagnoses``, read in memory with a size cap.

Starlette spools uploaded files over 1 MB to a temporary file; uploaded images must never touch
the disk, so the body is read here as a stream (refused with 413 as soon as it passes the cap)
and split with python-multipart's streaming parser (Starlette's), without its file spooling.
The form has four fields: a body with more parts is refused as soon as the parser meets the
next one (the standard library's MIME parser took minutes for a 20 MB body of tiny parts).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from gsco_common.errors import PayloadTooLargeError, RequestError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks  # a TypedDict for type checkers only

FORM_OVERHEAD = 64 * 1024
FIELDS = ("image", "task_id", "k", "generalist")
MAX_PARTS = len(FIELDS)
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


@dataclass
class _Part:
    name: str | None = None
    header_name: bytes = b""
    header_value: bytes = b""
    data: list[bytes] = field(default_factory=list)


class _Collector:
    """The parser's callbacks: the parts' names and data, refused past ``MAX_PARTS``."""

    def __init__(self) -> None:
        self.parts: list[_Part] = []
        self.complete = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.begin,
            "on_header_field": self.header_name,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_part_data": self.data,
            "on_end": self.end,
        }

    def begin(self) -> None:
        if len(self.parts) == MAX_PARTS:
            raise RequestError(
                f"the form has more than {MAX_PARTS} parts", hint=f"send only the fields {', '.join(FIELDS)}"
            )
        self.parts.append(_Part())

    def header_name(self, data: bytes, start: int, end: int) -> None:
        self.parts[-1].header_name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.parts[-1].header_value += data[start:end]

    def data(self, data: bytes, start: int, end: int) -> None:
        self.parts[-1].data.append(data[start:end])

    def header_end(self) -> None:
        part = self.parts[-1]
        if part.header_name.lower() == b"content-disposition":
            name = parse_options_header(part.header_value)[1].get(b"name")
            part.name = name.decode("utf-8", errors="replace") if name is not None else None
        part.header_name = part.header_value = b""

    def end(self) -> None:
        self.complete = True


def _parts(content_type: str, body: bytes) -> dict[str, bytes]:
    """The form's fields by name (the first of a repeated name), parsed with python-multipart."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise RequestError("the request must be multipart/form-data", hint="send the image as a form field")
    collector = _Collector()
    try:
        parser = MultipartParser(boundary, collector.callbacks())
        parser.write(body)
        parser.finalize()
    except FormParserError:
        raise RequestError("the multipart body cannot be parsed") from None
    if not collector.complete:
        raise RequestError("the multipart body cannot be parsed", hint="the closing boundary is missing")
    parts: dict[str, bytes] = {}
    for part in collector.parts:
        if part.name is not None:
            parts.setdefault(part.name, b"".join(part.data))
    return parts


def _text(data: bytes | None) -> str | None:
    return data.decode("utf-8", errors="replace").strip() if data is not None else None


def _k(text: str | None) -> int | None:
    """``k`` from 1 to 100: ASCII digits, at most 3 (``int`` refuses "²", which ``isdigit`` accepts)."""
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 3 and 1 <= int(text) <= 100):
        raise RequestError("the form field 'k' must be an integer from 1 to 100")
    return int(text)


def parse_form(content_type: str, body: bytes) -> DiagnosisForm:
    """Fields ``image`` (file), ``task_id``, optional ``k`` and ``generalist``; 422 on anything wrong.

    CPU work on untrusted bytes: the routes run it in the threadpool, never on the event loop.
    """
    parts = _parts(content_type, body)
    image = parts.get("image")
    if image is None:
        raise RequestError("the form field 'image' is missing", hint="attach a PNG, JPEG or DICOM file")
    task_id = _text(parts.get("task_id"))
    if not task_id:
        raise RequestError("the form field 'task_id' is missing")
    generalist_text = (_text(parts.get("generalist")) or "true").lower()
    if generalist_text not in ("true", "false", "1", "0"):
        raise RequestError("the form field 'generalist' must be true or false")
    return DiagnosisForm(image, task_id, _k(_text(parts.get("k"))), generalist_text in ("true", "1"))

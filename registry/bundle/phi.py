"""PHI scanning: find identifying strings (paths, names, patient ids) in published artifacts.

Used on both sides of the trust boundary: the site's export refuses to write a bundle with a
hit, and the registry's approval re-scans it. Every hit is reported by *field* (where the string
sits), never by value, so the report itself leaks nothing.
"""

from __future__ import annotations

import getpass
import re
import socket
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

MIN_FORBIDDEN_LENGTH = 3
"""Shorter forbidden strings are ignored: they would match ordinary words and op names."""
SCAN_CHUNK_BYTES = 64 * 2**20
"""``scan_bytes`` lowers and searches large files this many bytes at a time."""

_SKIPPED_BYTES_FIELDS = frozenset({"raw_data"})
_TEXT_TYPES = frozenset(
    {FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES}
)
"""Tensor payloads are numbers, not strings (scanned separately at byte level if wanted)."""


def onnx_strings(model: Message, prefix: str = "model") -> Iterator[tuple[str, str]]:
    """Yield ``(field location, text)`` for every string in an ONNX (or any protobuf) message.

    The walk is generic over protobuf descriptors, so it covers graph, node, attribute,
    function, initializer and value-info names, doc strings, metadata and nested subgraphs, plus
    ``bytes`` fields that carry text (attribute ``s`` / ``strings``, string tensors). Unknown
    fields (parsed from the wire but absent from the schema) are yielded too, as raw text.
    """
    for field in model.DESCRIPTOR.fields:
        if field.type not in _TEXT_TYPES or field.name in _SKIPPED_BYTES_FIELDS or not _is_set(model, field):
            continue
        value = getattr(model, field.name)
        location = f"{prefix}.{field.name}"
        values = value if field.is_repeated else [value]
        for index, item in enumerate(values):
            where = f"{location}[{index}]" if field.is_repeated else location
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                yield from onnx_strings(item, where)
            elif field.type == FieldDescriptor.TYPE_STRING:
                yield where, item
            elif field.type == FieldDescriptor.TYPE_BYTES:
                yield where, item.decode("utf-8", errors="replace")
    for index, entry in enumerate(UnknownFieldSet(model)):
        if isinstance(entry.data, bytes):
            where = f"{prefix}.<unknown field {entry.field_number}>[{index}]"
            yield where, entry.data.decode("utf-8", errors="replace")


def _is_set(message: Message, field: FieldDescriptor) -> bool:
    if field.is_repeated:
        return len(getattr(message, field.name)) > 0
    if field.has_presence:
        return message.HasField(field.name)
    return getattr(message, field.name) != field.default_value


def fold(text: str | bytes) -> str:
    """``text`` in the form both sides of a comparison are put in: compatibility-normalised, case-folded.

    Unicode-aware, unlike ``re.IGNORECASE`` on bytes (ASCII only): ``MÜLLER`` and ``Müller``
    fold alike, and so do a composed ``ü`` and ``u`` + combining diaeresis (NFKD first, NFKC
    after, as case folding can undo a normal form). Bytes are read as UTF-8.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKD", text).casefold())


def _needles(forbidden: Iterable[str | bytes]) -> list[str]:
    needles = {fold(item if isinstance(item, bytes) else str(item)).strip() for item in forbidden}
    return sorted((n for n in needles if len(n) >= MIN_FORBIDDEN_LENGTH), key=len, reverse=True)


def _pattern(forbidden: Iterable[str | bytes]) -> re.Pattern[str] | None:
    needles = _needles(forbidden)
    if not needles:
        return None
    # Token-bounded: "000" (the stem of an anonymized 000.png) must not hit "Conv_1000" or "0.9000".
    alternation = "|".join(re.escape(n) for n in needles)
    return re.compile(r"(?<![A-Za-z0-9])(?:" + alternation + r")(?![A-Za-z0-9])")


def scan_strings(
    named_strings: Iterable[tuple[str, str | bytes]],
    forbidden: Iterable[str | bytes],
    *,
    deny_list: Iterable[str | bytes] = (),
) -> list[str]:
    """Fields whose text contains a forbidden or deny-listed string (in any case, any Unicode form).

    Both sides are compared :func:`fold`-ed, ``bytes`` read as UTF-8. Returns field locations in
    first-seen order, without duplicates.
    """
    pattern = _pattern([*forbidden, *deny_list])
    if pattern is None:
        return []
    hits: dict[str, None] = {}
    for field, text in named_strings:
        if pattern.search(fold(text)):
            hits[field] = None
    return list(hits)


_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
JSON_ESCAPE_BYTES = 7
"""The most bytes one folded character of a needle takes in a file: ``u\\u0308`` (``ü``
decomposed and JSON-escaped); chunks of the folded scan overlap by this much per character."""


def scan_bytes(data: bytes, forbidden: Iterable[str | bytes]) -> bool:
    r"""True when any forbidden string occurs anywhere in ``data`` (case-insensitive).

    ASCII needles: ``data`` is lowered in overlapping chunks and searched by plain substring
    search (a regex alternation scans a model file of hundreds of MB at ~30 MB/s, this at several
    hundred MB/s in bounded memory); ASCII case folding is all they need. A needle with other
    letters (``MÜLLER``) is found in any case and normal form, UTF-8 or JSON-escaped
    (``M\u00fcller``): each chunk is then decoded and :func:`fold`-ed too.
    """
    needles = _needles(forbidden)
    if not needles:
        return False
    ascii_needles = [n.encode("ascii") for n in needles if n.isascii()]
    other = [n for n in needles if not n.isascii()]
    overlap = max(len(n) for n in needles) * (JSON_ESCAPE_BYTES if other else 1) - 1
    view = memoryview(data).cast("B")
    for start in range(0, len(view), SCAN_CHUNK_BYTES):
        chunk = view[start : start + SCAN_CHUNK_BYTES + overlap].tobytes()
        lowered = chunk.lower()
        if any(needle in lowered for needle in ascii_needles):
            return True
        if other and _folded_chunk_holds(chunk, other):
            return True
    return False


def _folded_chunk_holds(chunk: bytes, needles: list[str]) -> bool:
    text = chunk.decode("utf-8", errors="replace")
    unescaped = _JSON_ESCAPE.sub(lambda found: chr(int(found.group(1), 16)), text)
    folded = {fold(text), fold(unescaped)}
    return any(needle in variant for needle in needles for variant in folded)


def system_identifiers() -> set[str]:
    """Strings that identify this machine and its user: host name(s), user name, home folder."""
    found: set[str] = set()
    host = socket.gethostname()
    found.update({host, host.split(".")[0]})
    try:
        found.add(getpass.getuser())
    except (KeyError, OSError):
        pass
    home = str(Path.home())
    if home not in ("", "/"):
        found.add(home)
    return {item for item in found if len(item) >= MIN_FORBIDDEN_LENGTH}

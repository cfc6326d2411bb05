"""Identifying patterns in free text (card and site-config texts), found without a list of values.

The identifier scan (:mod:`registry.bundle.phi`) finds strings the site knows (file names, patient
ids, host and user names). Free text typed by people can hold identifying text no list contains:
a patient's name, a record number, a birth date, an e-mail address, a host name or a file path.
These patterns catch those. Only the *field* is ever reported, never the value, and each field is
scanned up to :data:`MAX_FIELD_CHARS` characters (a longer text is reported as is: fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gsco_common.errors import PrivacyError
from registry.bundle.phi import scan_strings

MAX_FIELD_CHARS = 65_536
_TLDS = (
    "local|lan|internal|intranet|corp|localdomain|org|com|net|edu|gov"
    "|de|fr|uk|ch|nl|it|es|at|be|se|dk|no|fi|us|ca"
)
FREE_TEXT_FIELDS = ("intended_use", "out_of_scope", "limitations", "modality", "description", "notes")
"""Fields typed by people; ids, digests, fingerprints and metrics are not free text."""
PATTERNS: dict[str, re.Pattern[str]] = {
    # Anchored at the start of a run of address characters: unanchored, a long run without an
    # "@" is retried from each of its characters (quadratic: ~20 s for one 64 KiB field).
    "e-mail address": re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "date (birth date?)": re.compile(
        r"\b(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})\b"
    ),
    "record number": re.compile(
        r"\b(?:MRN|PID|patient[ _-]?id|record[ _-]?(?:no|number))\b|\b[A-Za-z]{0,4}[-_]?\d{6,}\b",
        re.IGNORECASE,
    ),
    "host name": re.compile(
        rf"\b[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)*\.(?:{_TLDS})\b", re.IGNORECASE
    ),
    "file path": re.compile(r"(?:^|[\s(\"'=:])~?(?:/[\w.-]+){2,}|\b[A-Za-z]:\\|\\\\\w"),
    "person name": re.compile(
        r"\b[A-Za-z]+\^[A-Za-z]+|\b(?:Mr|Mrs|Ms|Miss|Mx)\.?\s+[A-Z][a-z]+|\b[Pp]atient\s+[A-Z][a-z]+\s+[A-Z][a-z]+"
    ),
}


def looks_identifying(text: str) -> bool:
    """Whether ``text`` matches an identifying pattern (or is too long to scan: fail closed)."""
    return len(text) > MAX_FIELD_CHARS or any(p.search(text) for p in PATTERNS.values())


def free_text_fields(named_strings: Iterable[tuple[str, str]]) -> list[str]:
    """Free-text fields whose text matches an identifying pattern (or is too long to scan)."""
    hits: dict[str, None] = {}
    for field, text in named_strings:
        if any(name in field for name in FREE_TEXT_FIELDS) and looks_identifying(text):
            hits[field] = None
    return list(hits)


def refuse_identifying_text(
    named_strings: Iterable[tuple[str, str]],
    forbidden: Iterable[str],
    deny_list: Iterable[str],
    *,
    hint: str = "nothing was written; remove them from site.yaml (task texts) or adjust export.deny_list",
) -> None:
    """Raise :class:`PrivacyError` naming (never quoting) every field with identifying text."""
    named = list(named_strings)
    hits = list(
        dict.fromkeys([*scan_strings(named, forbidden, deny_list=deny_list), *free_text_fields(named)])
    )
    if hits:
        raise PrivacyError(
            f"card.json would contain identifying strings in: {', '.join(hits[:10])}", hint=hint
        )

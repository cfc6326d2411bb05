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
from typing import Protocol

from gsco_common.errors import PrivacyError
from registry.bundle.phi import scan_strings

MAX_FIELD_CHARS = 65_536
KNOWN_DOMAINS = (
    "local|lan|internal|intranet|corp|localdomain|org|com|net|edu|gov"
    "|de|fr|uk|ch|nl|it|es|at|be|se|dk|no|fi|us|ca"
)
_HOST_RUN = re.compile(r"[a-z0-9.-]+", re.IGNORECASE)
_TLD_HERE = re.compile(rf"(?:{KNOWN_DOMAINS})\b", re.IGNORECASE)
_DOT_TLD = re.compile(rf"\.{_TLD_HERE.pattern}", re.IGNORECASE)
_LETTER_OR_DIGIT = re.compile(r"[a-z0-9]", re.IGNORECASE)
_WORD_CHAR = re.compile(r"\w")


class Finder(Protocol):
    """What the scan needs of a pattern: whether ``text`` holds a match."""

    def search(self, text: str) -> object: ...


class HostNames:
    r"""Host names ending in a known domain (``pacs01.radiology.lan``), found in linear time.

    It finds what ``\b[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)*\.(?:TLD)\b`` finds
    (case-insensitive), but that regex is retried from every label of a run such as
    ``a.a.a.…`` and runs to its end each time: quadratic, minutes for one 64 KiB field. Instead
    each run of host characters is read once, label by label: a host name ends at a dot followed
    by a known domain, preceded by an unbroken chain of non-empty labels of which one can start
    it. A label can start a host name when it ends in a letter or digit and holds a letter or
    digit at a word boundary: after a dot or a hyphen, or at the start of a run that no word
    character precedes.
    """

    def search(self, text: str) -> bool:
        if not _DOT_TLD.search(text):  # most texts: one pass in C, no host name possible
            return False
        for run in _HOST_RUN.finditer(text):
            after_word = run.start() > 0 and _WORD_CHAR.match(text, run.start() - 1) is not None
            offset, can_start = run.start(), False
            for index, label in enumerate(run.group().split(".")):
                if can_start and _TLD_HERE.match(text, offset):
                    return True
                if not label:
                    can_start = False
                elif _LETTER_OR_DIGIT.fullmatch(label[-1]) and (index > 0 or not after_word or "-" in label):
                    can_start = True
                offset += len(label) + 1
        return False


FREE_TEXT_FIELDS = ("intended_use", "out_of_scope", "limitations", "modality", "description", "notes")
"""Fields typed by people; ids, digests, fingerprints and metrics are not free text."""
PATTERNS: dict[str, Finder] = {
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
    "host name": HostNames(),
    "file path": re.compile(r"(?:^|[\s(\"'=:])~?(?:/[\w.-]+){2,}|\b[A-Za-z]:\\|\\\\\w|\bfile:/"),
    "person name": re.compile(
        r"\b[A-Za-z]+\^[A-Za-z]+|\b(?:Mr|Mrs|Ms|Miss|Mx)\.?\s+[A-Z][a-z]+|\b[Pp]atient\s+[A-Z][a-z]+\s+[A-Z][a-z]+"
    ),
}


ORIGIN_FIELD = "pretrained.origin"
"""Where the pretrained weights came from: typed by people, but a release URL (a host name) and
a release date are what it is for, so only the other patterns apply there."""
ORIGIN_PATTERNS = ("e-mail address", "record number", "file path", "person name")


def looks_identifying(text: str, patterns: Iterable[str] = tuple(PATTERNS)) -> bool:
    """Whether ``text`` matches one of ``patterns`` (all by default; too long to scan: fail closed)."""
    return len(text) > MAX_FIELD_CHARS or any(PATTERNS[name].search(text) for name in patterns)


def free_text_fields(named_strings: Iterable[tuple[str, str]]) -> list[str]:
    """Free-text fields (and the weights' origin) whose text matches an identifying pattern."""
    hits: dict[str, None] = {}
    for field, text in named_strings:
        if field.endswith(ORIGIN_FIELD):
            found = looks_identifying(text, ORIGIN_PATTERNS)
        else:
            found = any(name in field for name in FREE_TEXT_FIELDS) and looks_identifying(text)
        if found:
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

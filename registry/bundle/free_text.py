"""Identifying patterns in free text (card and site-config texts), found without a list of values.

The identifier scan (:mod:`registry.bundle.phi`) finds strings the site knows (file names, patient
ids, host and user names). Free text typed by people can hold identifying text no list contains:
a patient's name, a record number, a birth date, a phone number, an e-mail address, a host name or
IP address (v4 or v6), a file path or a file share.
These patterns catch those. Only the *field* is ever reported, never the value, and each field is
scanned up to :data:`MAX_FIELD_CHARS` characters (a longer text is reported as is: fail closed).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Protocol

from gsco_common.errors import PrivacyError
from registry.bundle.phi import scan_strings

MAX_FIELD_CHARS = 65_536
PRIVATE_LABELS = "local|lan|internal|intranet|corp|localdomain"
"""Last labels of host names on a private network (never a public release server's)."""
INTERNAL_DOMAINS = PRIVATE_LABELS + "|home\\.arpa"
KNOWN_DOMAINS = (
    PRIVATE_LABELS + "|org|com|net|edu|gov|eu|io|info|health|hospital"
    "|de|fr|uk|ch|nl|it|es|at|be|se|dk|no|fi|us|ca|pl|cz|pt|ie|lu|hu|gr|ro|sk|si|hr|au|nz|jp"
)
FILE_EXTENSIONS = (
    "safetensors|onnx|pt|pth|ckpt|bin|h5|pb|tflite|json|yaml|yml|toml|ini|cfg|txt|md|csv|npz|npy|log"
    "|py|js|html|zip|gz|tar|whl"
)
"""Last labels that name a weights, config, data or software file (``resnet18.safetensors``,
``node.js``), not a host."""
TLD = rf"(?i:{KNOWN_DOMAINS})\b|(?!(?:{FILE_EXTENSIONS})\b)[a-z]{{2,63}}\b"
"""How a host name ends: a known domain in any case, or any lowercase label of 2 to 63 letters
(``.eu``, ``.io``, ``.hospital``) that is not a file extension."""
HOST_NAME_REGEX = re.compile(rf"\b(?i:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)*)\.(?:{TLD})")
"""What a host name is, as a regex. Quadratic on long runs of labels, so the scan uses
:class:`HostNames`, which must find the same (the tests and ``bench/free_text_scan.py`` check)."""
_HOST_RUN = re.compile(r"[a-z0-9.-]+", re.IGNORECASE)
_TLD_HERE = re.compile(rf"(?:{TLD})")
_DOT_TLD = re.compile(rf"\.(?:{TLD})")
_LETTER_OR_DIGIT = re.compile(r"[a-z0-9]", re.IGNORECASE)
_WORD_CHAR = re.compile(r"\w")
_TITLES = r"Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Herr|Frau"
_NAME_WORD = r"[^\W\d_][\w'’-]*"
"""A word a name can be: letters first, then letters, digits, apostrophes, hyphens (``O'Brien``)."""
_TITLE = re.compile(
    # further titles, degrees and particles between the title and the name: "Prof. Dr. med.
    # Müller", "Dr. van der Berg"
    rf"\b(?:{_TITLES})\b\.?(?:\s+(?:{_TITLES}|med|rer|nat|phil|dent|van|von|der|den|de|del|della|di|da|du|la|le|ten|ter|zu)\b\.?)*"
    rf"\s+({_NAME_WORD})"
)
_PATIENT = re.compile(
    rf"\b(?:[Pp]atient(?:in|en)?(?:'s)?(?:\s+name)?|[Nn]ame)\s*:?\s+({_NAME_WORD}|[A-Z]\.)\s+({_NAME_WORD})"
)
_CARET_NAME = re.compile(r"\b[^\W\d_]+\^[^\W\d_]+")
MONTHS = (
    "jan(?:uary|uar)?|feb(?:ruary|ruar)?|mar(?:ch)?|m\u00e4rz|apr(?:il)?|ma[iy]|jun[ei]?|jul[iy]?"
    "|aug(?:ust)?|sep(?:t|tember)?|o[ck]t(?:ober)?|nov(?:ember)?|de[cz](?:ember)?"
)
"""English and German month names and their abbreviations, for dates written in words."""


class Finder(Protocol):
    """What the scan needs of a pattern: whether ``text`` holds a match."""

    def search(self, text: str) -> object: ...


class HostNames:
    r"""Host names (``pacs01.radiology.lan``, ``ws7.klinikum.eu``), found in linear time.

    It finds what :data:`HOST_NAME_REGEX` finds (the labels case-insensitive, :data:`TLD` as it
    says), but that regex is retried from every
    label of a run such as ``a.a.a.…`` and runs to its end each time: quadratic, minutes for one
    64 KiB field. Instead each run of host characters is read once, label by label: a host name
    ends at a dot followed by a :data:`TLD`, preceded by an unbroken chain of non-empty labels of
    which one can start it. A label can start a host name when it ends in a letter or digit and
    holds a letter or digit at a word boundary: after a dot or a hyphen, or at the start of a run
    that no word character precedes.
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


_HEX_COLON_RUN = re.compile(r"[0-9a-f:]+", re.IGNORECASE)
MAX_IPV6_CHARS = 39
IPV6_GROUPS = 8


def _ipv6_candidate(text: str, run: re.Match[str]) -> str | None:
    """What of a run of hex digits and colons could be an address; ``None`` when glued to a word."""
    candidate, start, end = run.group(), run.start(), run.end()
    if end < len(text) and text[end].isalnum():
        return None
    if start and text[start - 1].isalnum():  # "ipv6:2001:db8::7": what follows the label's colon
        _, colon, candidate = candidate.partition(":")
        if not colon or candidate.startswith(":"):  # "x86", "std::vector"
            return None
    elif start and text[start - 1] == ".":
        return None
    if candidate.endswith(":") and not candidate.endswith("::"):
        candidate = candidate[:-1]  # "fe80::1: unreachable"
    return candidate


def _is_ipv6(candidate: str) -> bool:
    """Whether ``candidate`` reads as an address this scan counts.

    Two or more groups, one of three or more digits; or all eight groups written, one of two or
    more digits or with a hex letter (not a ratio such as ``1:1:1:1:1:1:1:1``).
    """
    groups = [group for group in candidate.split(":") if group]
    all_written = len(groups) == IPV6_GROUPS and any(len(g) >= 2 or not g.isdigit() for g in groups)
    if len(candidate) > MAX_IPV6_CHARS or not (
        all_written or (len(groups) >= 2 and max(map(len, groups)) >= 3)
    ):
        return False
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


class IPv6Addresses:
    """IPv6 addresses (``fe80::1ff:fe23:4567:890a``, ``2001:db8::7``, ``inet6 addr:fe80::1``).

    Each maximal run of hex digits and colons is read once (linear in the text): it is an address
    when :mod:`ipaddress` reads it as one and it has two or more groups, one of three or more
    digits (``fd00:a:b:c::1``), or all eight groups, one of two or more digits or with a hex letter
    (``fd:0:0:0:0:0:0:1``; the ratio ``1:1:1:1:1:1:1:1`` is none). ``::1``, ``a::b`` and the slices
    ``x[::10]``, ``v[1::10]`` are none: the loopback names no host. A run glued to a word is read
    from after the word's colon (``ipv6:2001:db8::7``, ``IPv6:fe80::1``), and is none without one
    (``std::vector``, ``Foo::Bar``); an underscore is no glue (``node_2001:db8::7``). A run after a
    dot, longer than an address (``sha256:ab…``), or a time such as ``12:30:45`` is none.
    """

    def search(self, text: str) -> bool:
        for run in _HEX_COLON_RUN.finditer(text):
            candidate = _ipv6_candidate(text, run)
            if candidate is not None and _is_ipv6(candidate):
                return True
        return False


MIN_PHONE_DIGITS = 9
"""Digits of the shortest number taken for one after ``+`` or ``00`` (the shortest international
numbers have 10; ``+0.5 0.3 0.2 0.1`` has 8)."""
MIN_KEYED_PHONE_DIGITS = 6
"""Digits of the shortest number taken for one after "Tel.", "phone:", "Fax" and the like."""
_NUMBER = r"[+(]?\d[\d\s()/.-]{3,24}"
_NUMBER_WORD = r"(?:nr|no|number|nummer)\b\.?"
_PHONE_INTERNATIONAL = re.compile(
    r"(?:(?<![\w+])\+|\b00)\d{1,3}[\s.\u2011-]?(?:\(\d{1,5}\)[\s.\u2011-]?)?\d[\d\s.\u2011-]{5,20}\d"
)
# A marker that names a phone on its own ("Tel. 030 …", "Fax 0221 …", "Durchwahl 450-5123"), and a
# word that does only with "no." or a colon after it ("phone: 030 …", "ext.: 450 5123", but not
# "mobile 0.87", "phone 2019-2021" or "ext. 2019-2021 cohort").
_PHONE_KEYED = re.compile(
    rf"\b(?:tel|t[eé]l[eé]phone|telefon\w*|t[eé]l|fax|rufnummer|durchwahl|handy|mob|pager)\b"
    rf"[\s:#.-]{{0,4}}(?:{_NUMBER_WORD}[\s:#-]{{0,3}})?({_NUMBER})"
    rf"|\b(?:phone|telephone|mobile?|cell|ext|extension|app)\b[\s.-]{{0,2}}(?:[:#]|{_NUMBER_WORD})"
    rf"[\s:#-]{{0,3}}({_NUMBER})",
    re.IGNORECASE,
)
_NATIONAL = r"\(?0\d{1,4}\)?(?:[\s/.-]\d{2,8}){2,4}"
"""A national number: its trunk prefix 0 and two to four more groups (``030 4505 1234``)."""
# A capital T, F or M alone on a letterhead ("T 030 4505 1234 / F 030 4505 1235", "T/F: …",
# "M 0171 …", "T. 030 …"), with or without a colon or a dot: only a national number, or after T
# or F a North American one in three groups ("T: 555 123 4567"); "T 2 weighted", "F: 1203
# (48.2 %)", "M 05/2021", "T1-weighted" and "M: 384 768 1024" are none.
_PHONE_LETTERHEAD = re.compile(
    rf"\b[TFM]\b(?:[ \t]?[:.][ \t]{{0,3}}|\s)({_NATIONAL})"
    r"|\b[TF]\b(?:[ \t]?[:.][ \t]{0,3}|\s)(\(?[2-9]\d{2}\)?[\s.-]\d{3}[\s.-]\d{4})(?![\w]|[.-]\d)"
)
# "Phone", "Ph." or German "Fon" without a colon or "no." ("Phone 030 4505 1234", "Fon 030 …"):
# only a national number ("phone 2019-2021", "pH 7.35-7.45" are none).
_PHONE_WORD_NATIONAL = re.compile(
    rf"\b(?:phone|telephone|ph|fon)\b\.?[ \t]{{0,3}}:?[ \t]{{0,3}}({_NATIONAL})", re.IGNORECASE
)
_PHONE_NANP = re.compile(
    r"(?<![\w.-])(?:1[\s.-])?(?:\([2-9]\d{2}\)\s?|[2-9]\d{2}[.-])\d{3}[\s.-]\d{4}(?![\w]|[.-]\d)"
)


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


class PhoneNumbers:
    """Phone and fax numbers.

    International, after ``+`` or ``00`` (``+49 30 4505-1234``, ``+1 (555) 123-4567``,
    ``0049 30 4505 1234``, any spaces, dots or hyphens between the groups); North American
    (``(555) 123-4567``, ``1-800-555-0199``); any number after "Tel.", "Telefon", "Fax",
    "Rufnummer", "Durchwahl", "Handy", "Mob.", "pager" or "Tél.", or after "phone", "mobile",
    "cell", "ext.", "extension" or "App." with a colon or "no." (``Tel. 030 4505 1234``,
    ``Phone no. 020 7946 0958``, ``ext.: 450 5123``); a national number in groups after its trunk
    prefix 0 after "phone", "Ph." or "Fon" without them (``Phone 030 4505 1234``, ``Fon 030 …``);
    and on a letterhead, after a capital "T", "F" or "M" standing alone, with or without a colon or
    a dot, such a national number (``T 030 4505 1234 / F 030 4505 1235``, ``T/F 01 23 45 67 89``,
    ``T. 030 …``), or after "T" or "F" a North American number in three groups (``T: 555 123 4567``).
    A number written without a separator is a run of digits the record-number pattern finds
    (``ext. 4505123``). Not taken for one: a national number with spaces and no marker
    (``030 4505 1234`` reads like a list of numbers), a decimal after a marker (``mobile: 0.87``),
    and after a lone letter a number without the trunk 0 or in fewer groups (``T 2 weighted``,
    ``F1 0.91``, ``M 128 256``, ``Sex F: 1203 (48.2 %)``, ``M 05/2021``, ``M: 384 768 1024``), and
    after "phone" or "pH" without a colon one without the trunk 0 (``phone 2019-2021``,
    ``pH 7.35-7.45``). Taken for one, failing closed: a list in the North American form
    (``256-512-1024``, ``T: 300 600 1200``).
    """

    def search(self, text: str) -> bool:
        if _PHONE_NANP.search(text) is not None:
            return True
        for found in _PHONE_INTERNATIONAL.finditer(text):
            if _digits(found.group().removeprefix("00")) >= MIN_PHONE_DIGITS:  # "00" stands for "+"
                return True
        for found in _PHONE_KEYED.finditer(text):
            number = found.group(1) or found.group(2)
            if _digits(number) >= MIN_KEYED_PHONE_DIGITS and not re.match(r"0\.\d", number):
                return True
        return any(
            _digits(found.group(found.lastindex or 0)) >= MIN_KEYED_PHONE_DIGITS
            for pattern in (_PHONE_LETTERHEAD, _PHONE_WORD_NATIONAL)
            for found in pattern.finditer(text)
        )


def _name_like(word: str) -> bool:
    """A capital then a small letter, in any script (``Jane``, ``Jürgen``, ``Łukasz``, ``McRae``).

    Also across an apostrophe (``O'Brien``), and an initial (``J.``).
    """
    if len(word) == 2 and word.endswith("."):
        return word[0].isupper()
    rest = word[1:].lstrip("'\u2019")
    return word[:1].isupper() and rest[:1].isalpha() and (rest[:1].islower() or rest != word[1:])


def _capitals(word: str) -> bool:
    """A surname in capitals, as lists and DICOM write them (``SMITH``, ``MÜLLER``), two letters or more."""
    letters = [ch for ch in word if ch.isalpha()]
    return len(letters) >= 2 and all(ch.isupper() for ch in letters)


def _reads_as_name(word: str) -> bool:
    return _name_like(word) or _capitals(word)


class PersonNames:
    """A name after a title, "patient" or "name", or in the DICOM form ``MÜLLER^JÜRGEN``.

    A title, then any further titles, degrees and particles: ``Dr. Roe``, ``Mrs Keller``,
    ``Dr. SMITH``, ``Mrs. O'Brien``, ``Dr. van der Berg``, ``Herr Dr. med. Müller``, ``Frau Schmidt``;
    after "patient" (also German "Patientin") or "name", two words: ``Patient: John Smith``,
    ``patient J. Smith``, ``Name: John SMITH``, ``Patient JOHN SMITH``. A name is a capital then a
    small letter, or a word in capitals (``Dr. AI`` is taken for one: failing closed).

    Letters are Unicode-aware: Python's ``re`` has no class for capitals beyond ``[A-Z]``, so the
    words after a marker are checked with :meth:`str.isupper` / :meth:`str.islower`.
    """

    def search(self, text: str) -> bool:
        return (
            _CARET_NAME.search(text) is not None
            or any(_reads_as_name(found.group(1)) for found in _TITLE.finditer(text))
            or any(all(map(_reads_as_name, found.groups())) for found in _PATIENT.finditer(text))
        )


FREE_TEXT_FIELDS = ("intended_use", "out_of_scope", "limitations", "modality", "description", "notes")
"""Fields typed by people; ids, digests, fingerprints and metrics are not free text."""
PATTERNS: dict[str, Finder] = {
    # Anchored at the start of a run of address characters: unanchored, a long run without an
    # "@" is retried from each of its characters (quadratic: ~20 s for one 64 KiB field).
    # also at a dotless host, three small letters or more ("jsmith@localhost", "radiology@pacs01";
    # not "mAP@IoU" or "AUC@224")
    "e-mail address": re.compile(
        r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+|(?<![\w.+-])[\w.+-]{2,}@[a-z]{3}[a-z0-9-]*"
    ),
    "date (birth date?)": re.compile(
        # not inside a decimal: "(0.88-0.94)" is an interval, not 88-0-94
        r"(?<![\d.])\b(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})\b"
        rf"|\b\d{{1,2}}(?:st|nd|rd|th|\.)?[\s,/-]{{0,3}}(?:of\s)?(?:{MONTHS})(?![a-z])\.?[\s,/-]{{0,3}}\d{{4}}\b"
        rf"|\b(?:{MONTHS})\b\.?\s{{1,3}}\d{{1,2}}(?:st|nd|rd|th)?,?\s{{1,3}}\d{{4}}\b",
        re.IGNORECASE,
    ),
    "record number": re.compile(
        r"\b(?:MRN|PID|patient[ _-]?id|record[ _-]?(?:no|number))\b|\b[A-Za-z]{0,4}[-_]?\d{6,}\b"
        r"|\b\d{3}([-. ])\d{2}\1\d{4}\b",  # a US social security number: 123-45-6789
        re.IGNORECASE,
    ),
    "host name": HostNames(),
    "file path": re.compile(
        r"(?:^|[\s(\[{<,;\"'=:])(?:~[\w.-]*|\.{1,2})?(?:/[\w.-]+){2,}"
        r"|(?:^|[\s(\[{<,;\"'=:])(?:~[\w.-]+|\.{1,2})/[\w.-]+"
        r"|\b[A-Za-z]:\\|\\\\\w|\bfile:/"
        r"|/~[^\W\d_][\w.-]*"  # a user's folder on a web server: https://fs01/~jsmith/
    ),
    "person name": PersonNames(),
    "IP address": re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)"),
    "IPv6 address": IPv6Addresses(),
    "phone number": PhoneNumbers(),
    # a host of a private network, for the weights' origin where a release URL's host is allowed
    # (one character before the last label: a repeated label group would be retried from each one)
    "internal host name": re.compile(rf"[a-z0-9-]\.(?:{INTERNAL_DOMAINS})\b", re.IGNORECASE),
    "network location": re.compile(
        r"(?<![\w+.-])(?:smb|cifs|nfs|afp|sftp|scp|ftps?)://|(?<![\w+.-])[a-z][\w+.-]*://[\w-]+(?![\w.-])",
        re.IGNORECASE,
    ),
}


ORIGIN_FIELD = "pretrained.origin"
"""Where the pretrained weights came from: typed by people, but a release URL (a host name) and
a release date are what it is for, so only the other patterns apply there, and of host names
only those of a private network (``pacs01.radiology.klinikum.lan``)."""
ORIGIN_PATTERNS = (
    "internal host name",
    "e-mail address",
    "record number",
    "file path",
    "person name",
    "IP address",
    "IPv6 address",
    "phone number",
    "network location",
)


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

"""Map a generalist's free-text answer to exactly one option, or to nothing.

Each option matches by its name or one of its synonyms: case-insensitive, whole words only
("normal" does not match "abnormal"), underscores and repeated spaces treated as one space. A
match inside a longer match of another option does not count (``"no pneumonia"`` as a synonym
of ``normal`` hides the ``pneumonia`` inside it). Exactly one option must remain; none or
several make the answer unparseable (None), and the caller falls back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_SPACES = re.compile(r"[\s_]+")


def _normalise(text: str) -> str:
    return _SPACES.sub(" ", text.casefold()).strip()


def _spans(text: str, term: str) -> list[tuple[int, int]]:
    pattern = r"(?<![\w])" + re.escape(_normalise(term)).replace(r"\ ", r"\s+") + r"(?![\w])"
    return [(m.start(), m.end()) for m in re.finditer(pattern, text)]


def parse_answer(
    answer: str, options: Sequence[str], synonyms: Mapping[str, Sequence[str]] | None = None
) -> int | None:
    """Index of the single option named in ``answer``; None if none or more than one is named."""
    text = _normalise(answer)
    if not text:
        return None
    hits: list[tuple[int, int, int]] = []
    for index, option in enumerate(options):
        for term in (option, *(synonyms or {}).get(option, ())):
            if _normalise(term):
                hits.extend((start, end, index) for start, end in _spans(text, term))
    kept = {
        index
        for start, end, index in hits
        if not any(
            o_start <= start and end <= o_end and (o_end - o_start) > (end - start) and o_index != index
            for o_start, o_end, o_index in hits
        )
    }
    return kept.pop() if len(kept) == 1 else None

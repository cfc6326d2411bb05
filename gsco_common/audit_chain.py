"""The hash chain behind every append-only audit log of the platform (registry and hub).

Each entry stores its predecessor's digest and its own digest over its content plus that link:
``sha256`` of the canonical JSON (sorted keys, no spaces) of the entry's fields with
``"prev": <previous digest>``. Editing a row with plain SQL changes its digest; deleting one leaves
a gap in the sequence; rewriting a link breaks it. :func:`verify_links` names the first entry that
fails. Deleting the newest entries leaves a valid but shorter chain: keep the head digest that a
verification prints somewhere else to detect that too.

The storage (tables, columns, which fields are hashed) belongs to each log; this module only
knows the fields as a mapping, so one chain algorithm serves every log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class ChainReport:
    """Outcome of :func:`verify_links`; ``broken_seq`` is the first entry that fails."""

    entries: int
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


@dataclass(frozen=True)
class Link:
    """One stored entry as the chain sees it: sequence number, hashed fields and both digests."""

    seq: int
    fields: Mapping[str, Any]
    prev_hash: str
    entry_hash: str


def link_digest(fields: Mapping[str, Any], prev: str) -> str:
    """The digest of one entry: its fields (JSON values) and its predecessor's digest."""
    payload = json.dumps({**fields, "prev": prev}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def verify_links(links: Iterable[Link]) -> ChainReport:
    """Recompute every digest and link in sequence order (1, 2, ...); stop at the first break."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    for link in links:
        if link.seq != expected_seq:
            return ChainReport(count, prev, expected_seq, f"entry {expected_seq} is missing (deleted)")
        if link.prev_hash != prev:
            return ChainReport(count, prev, link.seq, "its link to the previous entry is broken")
        if link_digest(link.fields, link.prev_hash) != link.entry_hash:
            return ChainReport(count, prev, link.seq, "its content was modified")
        prev = link.entry_hash
        expected_seq += 1
        count += 1
    return ChainReport(count, prev)

"""The audit hash chain itself: the digest of a known entry, and the exact report of each break."""

from __future__ import annotations

import hashlib

from gsco_common.audit_chain import GENESIS, ChainReport, Link, link_digest, verify_links


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _chain(count: int) -> list[Link]:
    links, prev = [], GENESIS
    for seq in range(1, count + 1):
        fields = {"seq": seq, "action": f"act-{seq}"}
        digest = link_digest(fields, prev)
        links.append(Link(seq, fields, prev, digest))
        prev = digest
    return links


def test_digest_is_sha256_of_canonical_json_with_the_link() -> None:
    # Sorted keys, no spaces, the predecessor under "prev", non-ASCII escaped: written out by hand.
    expected = _sha('{"action":"approve","b":[1,2],"prev":"' + GENESIS + '","z":"\\u00e9"}')
    assert link_digest({"z": "é", "action": "approve", "b": [1, 2]}, GENESIS) == expected
    assert GENESIS == "0" * 64


def test_digest_depends_on_the_predecessor() -> None:
    assert link_digest({"a": 1}, GENESIS) != link_digest({"a": 1}, "1" * 64)


def test_intact_chain_reports_count_and_head() -> None:
    links = _chain(3)
    assert verify_links(links) == ChainReport(3, links[-1].entry_hash)
    assert verify_links(links).ok
    assert verify_links([]) == ChainReport(0, GENESIS)


def test_deleted_entry_is_named_with_the_verified_prefix() -> None:
    links = _chain(3)
    report = verify_links([links[0], links[2]])
    assert report == ChainReport(1, links[0].entry_hash, 2, "entry 2 is missing (deleted)")
    assert not report.ok
    assert verify_links(links[1:]) == ChainReport(0, GENESIS, 1, "entry 1 is missing (deleted)")


def test_rewritten_link_is_named() -> None:
    links = _chain(3)
    forged = Link(3, links[2].fields, "f" * 64, link_digest(links[2].fields, "f" * 64))
    report = verify_links([links[0], links[1], forged])
    assert report == ChainReport(2, links[1].entry_hash, 3, "its link to the previous entry is broken")


def test_modified_content_is_named() -> None:
    links = _chain(3)
    edited = Link(2, {**links[1].fields, "action": "forged"}, links[1].prev_hash, links[1].entry_hash)
    report = verify_links([links[0], edited, links[2]])
    assert report == ChainReport(1, links[0].entry_hash, 2, "its content was modified")


def test_the_first_entry_must_link_to_genesis() -> None:
    fields = {"seq": 1}
    orphan = Link(1, fields, "a" * 64, link_digest(fields, "a" * 64))
    assert verify_links([orphan]) == ChainReport(0, GENESIS, 1, "its link to the previous entry is broken")

"""The decision JSON's links to similar cases are well-formed URLs whatever the case id holds."""

from __future__ import annotations

from gsco_runtime.decision import Decision, RetrievedCase
from hub.service.decisions import decision_body


def test_a_case_id_is_one_encoded_path_segment_of_its_thumbnail_url() -> None:
    # A library imported before case ids were checked may still hold such an id.
    decision = Decision(
        task_id="pneumonia",
        label="normal",
        confidence=0.9,
        arbiter="consensus",
        generalist=None,
        specialists=(),
        retrieved=(RetrievedCase("a b/../c?d#e", "normal", 0.8), RetrievedCase("c-17", "normal", 0.7)),
        generalist_answer=None,
        fallback=False,
        fallback_reason=None,
        latency_ms={},
    )
    body = decision_body(decision, k=None, low_confidence_below=0.5)
    assert [case["thumbnail_url"] for case in body["similar_cases"]] == [
        "/v1/cases/pneumonia/a%20b%2F..%2Fc%3Fd%23e/thumbnail",
        "/v1/cases/pneumonia/c-17/thumbnail",
    ]

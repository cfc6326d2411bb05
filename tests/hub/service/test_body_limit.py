"""Request bodies are capped before any route reads them, and a client that leaves is no failure."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx

from hub.service.body_limit import SMALL_BODY_BYTES
from tests.hub.service.conftest import Hub, metric

REVIEW = "/v1/diagnoses/no-such-decision/review"
JSON = {"content-type": "application/json"}


def _refused(answer: httpx.Response) -> None:
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "GSCO-813"
    assert answer.json()["error"]["message"].startswith("the request body is larger than the limit of 64 KiB")


def _chunks(total: int) -> Iterator[bytes]:
    """A body sent without a Content-Length (chunked), ``total`` bytes of JSON whitespace."""
    yield b"{"
    for _ in range(total // 8192):
        yield b" " * 8192
    yield b"}"


def test_a_large_json_body_is_refused_before_the_token_check_reads_it(hub: Hub) -> None:
    with hub.client() as anonymous:  # no token: the review route would answer 401 after the body
        _refused(anonymous.post(REVIEW, content=b"{" + b" " * SMALL_BODY_BYTES + b"}", headers=JSON))
        _refused(anonymous.post(REVIEW, content=_chunks(4 * SMALL_BODY_BYTES), headers=JSON))
        small = anonymous.post(REVIEW, json={"action": "confirm"})
    assert small.status_code == 401 and small.json()["error"]["code"] == "GSCO-520"
    with hub.client(hub.clinician) as client:
        found = client.post(REVIEW, json={"action": "confirm"})  # a small body reaches the route
    assert found.status_code == 404 and found.json()["error"]["code"] == "GSCO-804"


def test_a_client_leaving_mid_upload_is_counted_apart_and_logged_without_a_traceback(hub: Hub) -> None:
    closed = 'gsco_hub_requests_total{route="/v1/diagnoses",status="499"}'
    before = hub.metrics()
    url = urlsplit(hub.url)
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(
            b"POST /v1/diagnoses HTTP/1.1\r\nHost: hub\r\n"
            + f"Authorization: Bearer {hub.clinician}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n"
        )
    for _ in range(100):  # the server notices the closed connection on its own time
        after = hub.metrics()
        if metric(after, closed) > metric(before, closed):
            break
        time.sleep(0.1)
    assert metric(after, closed) - metric(before, closed) == 1
    assert metric(after, 'gsco_hub_requests_total{route="/v1/diagnoses",status="500"}') == metric(
        before, 'gsco_hub_requests_total{route="/v1/diagnoses",status="500"}'
    )
    assert "ClientDisconnect" not in hub.log.getvalue()
    assert (
        "the client closed the connection before its request to /v1/diagnoses was read" in hub.log.getvalue()
    )


def _send_and_stall(hub: Hub, head: bytes) -> tuple[bytes, float]:
    """Send ``head`` (a request whose body is cut short), then nothing: what the hub answers, and when."""
    url = urlsplit(hub.url)
    with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
        sock.sendall(head)
        start = time.monotonic()
        answer = b""
        while chunk := sock.recv(65536):  # until the hub closes the connection
            answer += chunk
        return answer, time.monotonic() - start


def _timed_out(answer: bytes) -> dict[str, object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    error = json.loads(body)["error"]
    assert error["code"] == "GSCO-808"
    assert error["message"].startswith("no part of the request body arrived for 3 s")
    return error


def test_a_body_that_stops_arriving_is_answered_with_408_and_the_connection_closed(hub: Hub) -> None:
    """A few bytes and then nothing held a connection (and a coroutine) for as long as the client liked."""
    timeout = hub.app.state.hub.settings.body_timeout_s
    before = hub.metrics()
    review, waited = _send_and_stall(
        hub,
        f"POST {REVIEW} HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n".encode()
        + b"Content-Length: 100\r\n\r\n{",
    )
    _timed_out(review)
    assert waited >= timeout
    upload, _ = _send_and_stall(  # a streamed route: the upload form reads its body itself
        hub,
        b"POST /v1/diagnoses HTTP/1.1\r\nHost: hub\r\n"
        + f"Authorization: Bearer {hub.clinician}\r\n".encode()
        + b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n",
    )
    _timed_out(upload)
    after = hub.metrics()
    counted = 'gsco_hub_errors_total{code="GSCO-808"}'
    assert metric(after, counted) - metric(before, counted) == 2
    streamed = 'gsco_hub_requests_total{route="/v1/diagnoses",status="408"}'
    assert metric(after, streamed) - metric(before, streamed) == 1


def test_a_slow_body_that_keeps_arriving_is_read(hub: Hub) -> None:
    """The limit is on each pause, not on the whole body: pieces half a second apart for longer than it."""
    timeout = hub.app.state.hub.settings.body_timeout_s
    # The hub's start imports the FHIR models in a thread of this process; while that holds the
    # GIL the server's loop can read a piece seconds late, and a pause would look longer than it is.
    hub.app.state.fhir_models.join(120)

    def trickled() -> Iterator[bytes]:
        for piece in (b'{"action"', b": ", b'"confirm"', b" ", b" ", b" ", b" ", b"}"):
            yield piece
            time.sleep(timeout / 6)

    start = time.monotonic()
    with hub.client(hub.clinician) as client:
        found = client.post(REVIEW, content=trickled(), headers=JSON)
    assert time.monotonic() - start > timeout
    assert found.status_code == 404 and found.json()["error"]["code"] == "GSCO-804"  # the route read it

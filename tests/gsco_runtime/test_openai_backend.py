from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from gsco_common.errors import ConfigError, GeneralistError
from gsco_runtime.generalists import create_backend
from gsco_runtime.generalists.openai_http import OpenAIBackend
from tests.gsco_runtime.chat_server import ChatServer, Step, start_chat_server

IMAGE = (np.arange(28 * 28).reshape(28, 28) % 255).astype(np.uint8)


@pytest.fixture
def server() -> Iterator[ChatServer]:
    state, http = start_chat_server()
    yield state
    http.shutdown()


def test_request_shape_and_answer(server: ChatServer) -> None:
    backend = create_backend("openai", base_url=server.url, model="MedDr", max_tokens=16, timeout_s=5)
    server.reply(Step(text="Pneumonia."))
    answer = backend.generate(IMAGE, "Which one?", system="Answer the questions.")
    assert answer == "Pneumonia."
    assert server.shape_errors == []
    body = server.requests[0]
    assert body["model"] == "MedDr" and body["temperature"] == 0 and body["max_tokens"] == 16
    assert body["messages"][0] == {"role": "system", "content": "Answer the questions."}
    parts = body["messages"][1]["content"]
    assert parts[0]["type"] == "image_url" and parts[1] == {"type": "text", "text": "Which one?"}


def test_base_url_may_end_in_v1(server: ChatServer) -> None:
    backend = OpenAIBackend(server.url + "/v1/", "MedDr", timeout_s=5)
    assert backend.generate(IMAGE, "q") == "pneumonia"
    assert server.shape_errors == []


def test_retries_server_errors_then_succeeds(server: ChatServer) -> None:
    server.reply(Step(status=503), Step(status=500), Step(text="normal"))
    backend = OpenAIBackend(server.url, "MedDr", max_retries=2, backoff_s=0.01, timeout_s=5)
    assert backend.generate(IMAGE, "q") == "normal"
    assert len(server.requests) == 3


def test_bounded_retries_then_a_plain_error(server: ChatServer) -> None:
    server.reply(*[Step(status=503)] * 5)
    backend = OpenAIBackend(server.url, "MedDr", max_retries=1, backoff_s=0.01, timeout_s=5)
    with pytest.raises(GeneralistError, match="HTTP 503 after 2 attempts"):
        backend.generate(IMAGE, "q")
    assert len(server.requests) == 2


def test_timeout_is_retried_and_reported(server: ChatServer) -> None:
    server.reply(Step(text="late", delay_s=1.0), Step(text="late", delay_s=1.0))
    backend = OpenAIBackend(server.url, "MedDr", max_retries=1, backoff_s=0.01, timeout_s=0.2)
    with pytest.raises(GeneralistError, match="timed out after 2 attempts"):
        backend.generate(IMAGE, "q")
    assert len(server.requests) == 2


def test_client_errors_are_not_retried(server: ChatServer) -> None:
    server.reply(Step(status=404))
    backend = OpenAIBackend(server.url, "MedDr", max_retries=3, backoff_s=0.01, timeout_s=5)
    with pytest.raises(GeneralistError, match="HTTP 404"):
        backend.generate(IMAGE, "q")
    assert len(server.requests) == 1


def test_unreachable_server_and_bad_settings() -> None:
    backend = OpenAIBackend("http://127.0.0.1:9", "MedDr", max_retries=0, timeout_s=2)
    with pytest.raises(GeneralistError, match="could not be reached"):
        backend.generate(IMAGE, "q")
    with pytest.raises(ConfigError):
        OpenAIBackend("ftp://x", "MedDr")
    with pytest.raises(ConfigError, match="unknown generalist backend"):
        create_backend("carrier-pigeon")

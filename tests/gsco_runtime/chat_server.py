"""A local OpenAI-compatible chat-completions server for tests (127.0.0.1, real HTTP).

It checks every request's shape the way vLLM / lmdeploy would need it for MedDr and answers
in the real API's response format. Scripted behaviours: answer text, HTTP status, delay.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image


@dataclass
class Step:
    """One scripted reply: ``text`` (200), or an HTTP ``status``, after ``delay_s``."""

    text: str = ""
    status: int = 200
    delay_s: float = 0.0


@dataclass
class ChatServer:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    shape_errors: list[str] = field(default_factory=list)
    script: deque[Step] = field(default_factory=deque)
    default: Step = field(default_factory=lambda: Step(text="pneumonia"))

    def reply(self, *steps: Step) -> None:
        self.script.extend(steps)


def request_problems(path: str, body: Any) -> list[str]:
    """Everything wrong with a chat-completions request carrying one image."""
    problems = []
    if path != "/v1/chat/completions":
        problems.append(f"path {path}")
    if not isinstance(body, dict):
        return [*problems, "body is not a JSON object"]
    if not isinstance(body.get("model"), str) or body.get("temperature") != 0:
        problems.append("model must be a string and temperature 0")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        problems.append("max_tokens missing")
    messages = body.get("messages") or []
    if (
        not messages
        or messages[-1].get("role") != "user"
        or not isinstance(messages[-1].get("content"), list)
    ):
        return [*problems, "last message must be a user message with content parts"]
    parts = messages[-1]["content"]
    images = [p for p in parts if p.get("type") == "image_url"]
    texts = [p for p in parts if p.get("type") == "text" and p.get("text")]
    if len(images) != 1 or len(texts) != 1:
        return [*problems, "expected one image_url part and one text part"]
    url = images[0].get("image_url", {}).get("url", "")
    if not url.startswith("data:image/png;base64,"):
        return [*problems, "image must be a base64 PNG data URL"]
    try:
        Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1], validate=True))).verify()
    except (ValueError, OSError):
        problems.append("image data is not a PNG")
    return problems


def start_chat_server() -> tuple[ChatServer, ThreadingHTTPServer]:
    state = ChatServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            try:
                body = json.loads(self.rfile.read(length))
            except json.JSONDecodeError:
                body = None
            problems = request_problems(self.path, body)
            state.requests.append(body if isinstance(body, dict) else {})
            step = state.script.popleft() if state.script else state.default
            if step.delay_s:
                time.sleep(step.delay_s)
            if problems:
                state.shape_errors.extend(problems)
                self._send(400, {"error": {"message": "; ".join(problems), "type": "invalid_request_error"}})
            elif step.status != 200:
                self._send(step.status, {"error": {"message": "scripted failure", "type": "server_error"}})
            else:
                self._send(200, _completion(body, step.text))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return state, server


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 3, "total_tokens": 103},
    }

"""A real HTTP server on loopback that answers every request with 503, and counts them.

Retry tests count what the server actually received instead of reading the attempt count back
from the configuration under test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UNAVAILABLE = json.dumps({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "maintenance"}).encode()


class CountingServer(ThreadingHTTPServer):
    """Counts requests (method and path) as they arrive."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: CountingServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with self.server.lock:
            self.server.received.append(f"{self.command} {self.path.split('?')[0]}")
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(UNAVAILABLE)))
        self.end_headers()
        self.wfile.write(UNAVAILABLE)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (BaseHTTPRequestHandler's name)
        return


@contextmanager
def unavailable_server() -> Iterator[CountingServer]:
    """Serve 503 on a free loopback port for the duration of the block."""
    server = CountingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()

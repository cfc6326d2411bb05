"""Loopback networking helpers shared by the site's SuperNode launcher and the hub's SuperLink."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A free loopback TCP port (asked of the kernel, so two launchers never pick the same one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

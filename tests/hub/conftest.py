"""The hub service fixture of ``tests/hub/service`` shared with the other hub tests (browser)."""

from __future__ import annotations

from tests.hub.service.conftest import Hub, hub

__all__ = ["Hub", "hub"]

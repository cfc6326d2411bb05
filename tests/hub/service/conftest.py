"""One real registry, a hub home with a case library, and the real app under uvicorn on loopback."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from PIL import Image

from gsco_common.net import free_port
from gsco_runtime.cases.library import build_library, save_library
from gsco_runtime.cases.readers import RawCases
from hub.service.app import create_app
from hub.service.database import HubDatabase
from hub.service.settings import load_settings
from hub.service.tokens import TokenStore
from tests.gsco_runtime.world import LABELS, World
from tests.site_bundle import SiteBundle, make_real_world, publish_real

WEBHOOK_SECRET = "s3cret-webhook-key-0123456789"


@dataclass
class Hub:
    world: World
    task: str
    url: str
    real: tuple[SiteBundle, ...]
    clinician: str
    admin: str
    revoked: str
    log: io.StringIO
    app: object

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def metrics(self) -> str:
        """The hub's ``/metrics`` page now."""
        with self.client() as client:
            return client.get("/metrics").text


def metric(text: str, name: str) -> float:
    """The sum of the samples of a ``/metrics`` page whose line starts with ``name``."""
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def query_image(seed: int = 1) -> bytes:
    return png(np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8))


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="debug", access_log=True)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 120
    while not server.started and time.time() < deadline:
        time.sleep(0.1)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory, real_specialists: tuple[SiteBundle, ...]) -> Iterator[Hub]:
    """Serves two of the real specialists; the third is for the tests that approve one while serving."""
    world = make_real_world(tmp_path_factory.mktemp("hub-world"), real_specialists)
    task = world.new_task()
    publish_real(world, task, real_specialists[0])
    publish_real(world, task, real_specialists[1])
    rng = np.random.default_rng(0)
    raw = RawCases(
        images=[rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(20)], labels=np.arange(20) % 2
    )
    save_library(build_library(task, LABELS, raw), world.config.home)
    settings = load_settings(
        world.config,
        None,
        # a short body timeout: tests/hub/service/test_body_limit.py waits it out
        {"poll_interval_s": 0.5, "webhook_secret": WEBHOOK_SECRET, "max_upload_mb": 1, "body_timeout_s": 3},
    )
    db = HubDatabase(settings.database_url)
    store = TokenStore(db)
    clinician = store.create("clinician", "dr-who")[1]
    admin = store.create("admin", "it-admin")[1]
    revoked_info, revoked = store.create("clinician", "left")
    store.revoke(revoked_info.id)
    db.close()

    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="debug", access_log=True)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while not server.started and time.time() < deadline:
        time.sleep(0.1)
    assert server.started
    yield Hub(world, task, url, real_specialists, clinician, admin, revoked, log, app)
    server.should_exit = True
    thread.join(30)
    root.removeHandler(handler)

"""A hub started while the registry is down serves its verified cache and says so."""

from __future__ import annotations

import httpx

from hub.service.app import create_app
from hub.service.settings import load_settings
from registry.config import RegistryConfig
from tests.hub.service.conftest import Hub, query_image, serving

UNREACHABLE = "postgresql+psycopg2://hub@127.0.0.1:9/mlflow"


def test_registry_down_serves_from_cache_degraded(hub: Hub) -> None:
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {hub.admin}"}) as client:
        client.post("/v1/admin/refresh", timeout=60)  # the cache holds the current approved set
    down = RegistryConfig.resolve(
        home=hub.world.config.home, tracking_uri=UNREACHABLE, db_uri=UNREACHABLE, retries=0
    )
    unnamed = create_app(load_settings(down, None, {"poll_interval_s": 30}))
    with serving(unnamed) as url:
        ready = httpx.get(f"{url}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["reason"].startswith("no task is served")
    settings = load_settings(down, None, {"poll_interval_s": 30, "tasks": [hub.task]})
    with serving(create_app(settings)) as url:
        ready = httpx.get(f"{url}/readyz", timeout=30)
        assert ready.status_code == 200 and ready.json()["status"] == "degraded: registry unreachable"
        headers = {"Authorization": f"Bearer {hub.clinician}"}
        answer = httpx.post(
            f"{url}/v1/diagnoses",
            headers=headers,
            data={"task_id": hub.task},
            files={"image": ("x.png", query_image(21))},
            timeout=60,
        )
        assert answer.status_code == 200 and len(answer.json()["specialists"]) == 2
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
        age = [line for line in metrics.splitlines() if line.startswith("gsco_hub_cache_age_seconds ")]
        assert float(age[0].split()[-1]) > 0

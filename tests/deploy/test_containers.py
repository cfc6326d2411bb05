"""deploy/docker and deploy/k8s, checked statically (no Docker daemon or cluster here).

What a typo would break at deploy time: a compose service without an image or a healthcheck, a
Dockerfile whose final stage runs as root or installs the CUDA torch wheel, a probe on a route the
hub app does not have, a Secret, ConfigMap or PersistentVolumeClaim referenced but never defined.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.service.app import create_app
from hub.service.settings import load_settings
from registry.config import RegistryConfig
from registry.service import Registry

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
K8S = ROOT / "deploy" / "k8s"
ROLES = ("hub", "registry", "site-agent")


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _stages(dockerfile: Path) -> list[list[str]]:
    """The instructions of each build stage (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def _manifests() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def test_every_compose_service_has_an_image_and_a_healthcheck() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "minio", "mlflow", "superlink", "hub-1", "hub-2"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        build = service.get("build")
        if build:
            assert (DOCKER / build["context"] / build["dockerfile"]).resolve().is_file(), name
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"], f"{name} uses the undeclared secret {secret}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(".") or source in compose["volumes"], f"{name}: volume {source}"
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on the unknown service {dependency}"
    hub_tests = [" ".join(services[h]["healthcheck"]["test"]) for h in ("hub-1", "hub-2")]
    assert all("/readyz" in test for test in hub_tests)


@pytest.mark.parametrize("role", ROLES)
def test_each_dockerfile_is_multi_stage_non_root_with_cpu_torch(role: str) -> None:
    stages = _stages(DOCKER / f"{role}.Dockerfile")
    assert len(stages) >= 2
    users = [line.split()[1] for line in stages[-1] if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    torch = [line for stage in stages for line in stage if "torch==" in line]
    assert torch and all("download.pytorch.org/whl/cpu" in line for line in torch)
    assert any(line.upper().startswith("COPY --FROM=") for line in stages[-1])


@pytest.fixture(scope="module")
def hub_routes(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The paths of the real hub app (built, not started)."""
    config = RegistryConfig.resolve(home=tmp_path_factory.mktemp("routes"), retries=0)
    Registry.init(config)[0].close()
    app = create_app(load_settings(config))
    return {getattr(route, "path", "") for route in app.routes}


def test_hub_probes_point_at_real_routes_of_the_hub_app(hub_routes: set[str]) -> None:
    hub = next(d for d in _manifests() if d["kind"] == "Deployment" and d["metadata"]["name"] == "hub")
    container = hub["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"/readyz", "/healthz", "/metrics"} <= hub_routes


def test_every_referenced_secret_config_map_and_claim_is_defined() -> None:
    docs = _manifests()
    defined = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("Deployment", "hub"), ("Deployment", "mlflow")} <= defined
    secret_keys = {
        d["metadata"]["name"]: set(d.get("stringData", {})) | set(d.get("data", {}))
        for d in docs
        if d["kind"] == "Secret"
    }
    references = 0
    for doc in docs:
        for key, value in _walk(doc):
            if key == "secretKeyRef":
                assert value["key"] in secret_keys.get(value["name"], set()), value
            elif key == "secret" and isinstance(value, dict):
                assert value["secretName"] in secret_keys, value
            elif key == "configMap":
                assert ("ConfigMap", value["name"]) in defined, value
            elif key == "persistentVolumeClaim":
                assert ("PersistentVolumeClaim", value["claimName"]) in defined, value
            else:
                continue
            references += 1
    assert references >= 10

"""Server mode: a real `mlflow server` (PostgreSQL backend, proxied artifacts, basic auth).

The server and the registry's own tables share one scratch database on the local PostgreSQL,
created and dropped by the test. Skipped, with the reason, only when PostgreSQL is unreachable.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from gsco_common.errors import AuthError
from gsco_common.net import free_port
from registry.cli.main import app
from registry.config import RegistryConfig
from registry.service import Registry
from registry.trust import verify_approved
from tests.registry.bundles import make_bundle
from tests.registry.conftest import LABELS, SiteKey, postgres_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ADMIN, PASSWORD = "gsco-admin", "a-long-test-password-1"
runner = CliRunner()


@dataclass(frozen=True)
class Server:
    url: str
    db_uri: str
    artifacts: Path
    home: Path

    def config(self) -> RegistryConfig:
        return RegistryConfig.resolve(home=self.home, tracking_uri=self.url, db_uri=self.db_uri, retries=0)

    def cli(self, *args: str, password: str = PASSWORD) -> object:
        env = {"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": password}
        base = ["--home", str(self.home), "--tracking-uri", self.url, "--db-uri", self.db_uri]
        return runner.invoke(app, [*base, *args], env=env)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mlflow server exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail("mlflow server did not become healthy within 180 s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("mlflow-server")
    with postgres_database() as db_uri:
        (folder / "auth.ini").write_text(
            "[mlflow]\ndefault_permission = READ\n"
            f"database_uri = sqlite:///{folder / 'auth.db'}\n"
            f"admin_username = {ADMIN}\nadmin_password = {PASSWORD}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            "auth_cache_ttl_seconds = 300\n"
        )
        env = {
            **os.environ,
            "MLFLOW_AUTH_CONFIG_PATH": str(folder / "auth.ini"),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "gsco-test-secret",
        }
        port = free_port()
        log = folder / "server.log"
        command = [
            str(Path(sys.executable).with_name("mlflow")), "server",
            "--backend-store-uri", db_uri,
            "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--app-name", "basic-auth",
        ]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, process, log)
            yield Server(url, db_uri, folder / "artifacts", folder / "central-home")
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


@pytest.fixture(scope="module")
def credentials() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
        env.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
        yield


def test_full_flow_against_a_real_server(
    server: Server, credentials: None, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    for args in (
        ["init", "--json"],
        ["tasks", "create", "pneumonia", "--labels", ",".join(LABELS), "--modality", "chest X-ray"],
        ["sites", "enroll", "site-a", "--public-key", str(site_keys["a"].public_path)],
    ):
        result = server.cli(*args)
        assert result.exit_code == 0, result.output
    with Registry.open(server.config()) as registry:
        published = registry.publish(
            make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, backbone="srv-net")
        )
        assert registry.publish(tmp_path / "b").version == published.version
    approved = server.cli("approve", published.name, published.version, "--reviewer", "dr-x")
    assert approved.exit_code == 0, approved.output
    assert server.cli("verify", published.name, published.version).exit_code == 0
    listed = json.loads(server.cli("models", "list", "--json").stdout)
    assert [(r["name"], r["status"], r["aliases"]) for r in listed] == [
        (published.name, "approved", ["approved"])
    ]

    client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
    version = client.get_model_version_by_alias(published.name, "approved")
    assert version.tags["status"] == "approved" and version.tags["backbone"] == "srv-net"
    assert client.get_run(version.run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    stored = {p.name for p in server.artifacts.rglob("*") if p.is_file()}
    assert {"model.onnx", "card.json", "site.sig", "approval.sig"} <= stored

    with Registry.open(server.config()) as registry:
        bundle = registry.download_bundle(published.name, published.version, tmp_path / "hub-cache")
        assert verify_approved(bundle, registry.trust_store()).card.backbone == "srv-net"
    assert server.cli("audit", "verify").exit_code == 0


def test_refused_credentials_give_a_clear_error(
    server: Server, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    result = server.cli("models", "list", password="wrong-password")
    assert (
        result.exit_code == 9
        and "error[GSCO-520]" in result.stderr
        and "MLFLOW_TRACKING_USERNAME" in result.stderr
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
        env.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password")
        with (
            Registry.open(server.config()) as registry,
            pytest.raises(AuthError, match="refused the credentials"),
        ):
            registry.publish(
                make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, backbone="denied-net")
            )

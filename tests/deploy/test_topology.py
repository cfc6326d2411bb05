"""The native production topology end to end: `deploy/local/topology.py` as `make up` runs it.

Real processes only: the MLflow server (PostgreSQL backend, basic auth, proxied artifacts), the
TLS SuperLink and two `gsco-hub serve` replicas sharing one hub database. Two sites publish over
HTTP with their own MLflow accounts, the central team approves and revokes with `gsco-registry`,
the MLflow server is stopped and started again, and `down` must leave no process (checked by PID).
Skipped, with the reason, only when PostgreSQL is unreachable (GSCO_REQUIRE_POSTGRES=1: fails).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from bench.world import World
from deploy.local.config import scratch_env
from deploy.local.daemons import DaemonSet
from deploy.local.state import RunState, Secrets
from gsco_common.processes import pid_alive
from hub.cli.main import app as hub_app
from registry.cli.main import app as registry_app
from registry.config import RegistryConfig
from tests.hub.service.conftest import query_image
from tests.registry.conftest import PG_ADMIN, skip_without_postgres
from tests.site_bundle import SiteBundle, enroll_real_sites, publish_real

pytestmark = [pytest.mark.topology, pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
POLL_S = 2.0
# One poll, plus downloading, verifying and loading a bundle on a busy 2-core machine.
ONE_POLL_S = POLL_S + 20.0
TASK = "topo-pneumonia"
runner = CliRunner()


@dataclass
class Topology:
    state: RunState
    env: dict[str, str]
    secrets: Secrets

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`python -m deploy.local.topology ARGS` (what `make up` / `make down` run)."""
        return subprocess.run(
            [sys.executable, "-m", "deploy.local.topology", *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=400,
        )  # fmt: skip

    def as_user(self, user: str) -> dict[str, str]:
        password = self.secrets.get(f"mlflow-{user}.password")
        return {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password}

    def central(self, *args: str) -> Any:
        """`gsco-registry` as the central team: the admin account, over HTTP."""
        base = ["--home", self.state.central_home, "--tracking-uri", self.state.mlflow_url]
        env = {
            "MLFLOW_TRACKING_USERNAME": "gsco-admin",
            "MLFLOW_TRACKING_PASSWORD": self.secrets.get("mlflow-admin.password"),
        }
        result = runner.invoke(registry_app, [*base, "--db-uri", self.state.mlflow_db_url, *args], env=env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout) if "--json" in args else result.stdout

    def hub(self, name: str, token: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.state.hubs[name], headers=headers, timeout=60)


def _require_postgres() -> None:
    engine = create_engine(PG_ADMIN, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except OperationalError:
        skip_without_postgres()
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    _require_postgres()
    state_dir = tmp_path_factory.mktemp("topology") / "state"
    env = scratch_env(state_dir, POLL_S)
    started = time.monotonic()
    up = subprocess.run(
        [sys.executable, "-m", "deploy.local.topology", "up", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert up.returncode == 0, up.stdout + up.stderr
    print(f"[topology] up in {time.monotonic() - started:.1f} s")
    topo = Topology(RunState(**json.loads(up.stdout)), env, Secrets(state_dir))
    try:
        yield topo
    finally:
        if (state_dir / "topology.json").is_file():  # not yet brought down by the last test
            topo.run("down")


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.25)
    return time.monotonic() - started


def _serving(topo: Topology, token: str) -> dict[str, set[str]]:
    """Replica -> the `name/version` each serves for the task."""
    found = {}
    for name in topo.state.hubs:
        with topo.hub(name, token) as client:
            tasks = client.get("/v1/tasks").json()["tasks"]
        models = [m for t in tasks if t["task_id"] == TASK for m in t["models"]]
        found[name] = {f"{m['name']}/{m['version']}" for m in models}
    return found


def _all_serve(topo: Topology, token: str, expected: set[str]) -> Callable[[], bool]:
    return lambda: all(s == expected for s in _serving(topo, token).values())


def _readyz(topo: Topology) -> dict[str, str]:
    return {
        name: httpx.get(f"{url}/readyz", timeout=30).json()["status"] for name, url in topo.state.hubs.items()
    }


def _diagnose_everywhere(topo: Topology, token: str, seed: int) -> list[dict[str, Any]]:
    answers = []
    for name in topo.state.hubs:
        with topo.hub(name, token) as client:
            answer = client.post(
                "/v1/diagnoses", data={"task_id": TASK}, files={"image": ("x.png", query_image(seed))}
            )
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
    return answers


def _publish(
    topo: Topology, world: World, site: str, specialist: SiteBundle, monkeypatch: pytest.MonkeyPatch
) -> str:
    """``site`` publishes a real specialist (``tests/site_bundle.py``) with its own MLflow account."""
    with monkeypatch.context() as env:
        for key, value in topo.as_user(site).items():
            env.setenv(key, value)
        name, version = publish_real(world, TASK, specialist, site=site, approve=False)
    return f"{name}/{version}"


def test_two_replicas_follow_approvals_revocations_and_a_registry_outage(
    topology: Topology,
    real_specialists: tuple[SiteBundle, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topo = topology
    topo.central("tasks", "create", TASK, "--labels", "normal,pneumonia", "--modality", "chest X-ray")
    granted = topo.run("grant", TASK)
    assert granted.returncode == 0, granted.stderr
    config = RegistryConfig.resolve(
        home=tmp_path / "sites",
        tracking_uri=topo.state.mlflow_url,
        db_uri=topo.state.mlflow_db_url,
        retries=0,
    )
    world = World(root=tmp_path / "world", config=config)
    real_1, real_2, real_3 = real_specialists
    enroll_real_sites(world, (real_1, real_2), names=("site-a", "site-b"))  # their own keys
    token = topo.secrets.get("hub-admin.token")
    clinician = runner.invoke(
        hub_app,
        ["--home", str(tmp_path / "ops"), "tokens", "create", "--role", "clinician", "--name", "dr-topo",
         "--config", topo.state.hub_config, "--json"],
    )  # fmt: skip
    assert clinician.exit_code == 0, clinician.output
    clinician_token = json.loads(clinician.stdout)["token"]

    # Two sites publish over HTTP, each with its own account; the central team approves both.
    a1 = _publish(topo, world, "site-a", real_1, monkeypatch)
    b1 = _publish(topo, world, "site-b", real_2, monkeypatch)
    for key in (a1, b1):
        topo.central("approve", *key.split("/"), "--reviewer", "dr-central")
    seen = _wait(_all_serve(topo, clinician_token, {a1, b1}), ONE_POLL_S, "both replicas serve both")
    print(f"[topology] approval -> both replicas serving: {seen:.1f} s")

    # A revocation leaves both replicas.
    topo.central("revoke", *b1.split("/"), "--reason", "test revocation", "--reviewer", "dr-central")
    _wait(_all_serve(topo, clinician_token, {a1}), ONE_POLL_S, "the revoked version leaves both")
    _diagnose_everywhere(topo, clinician_token, 3)
    audit_before = topo.central("audit", "show", "--json")
    models_before = topo.central("models", "list", "--json")
    with topo.hub("hub-1", token) as client:
        hub_audit_before = client.get("/v1/audit", params={"limit": 1000}).json()["entries"]
    actions = [e["action"] for e in audit_before]
    assert actions.count("model.approve") == 2 and actions.count("model.revoke") == 1
    assert len(hub_audit_before) == 2

    # The MLflow server stops: both replicas keep answering from their caches, and say so.
    mlflow_pid = DaemonSet(Path(topo.state.state_dir)).pid("mlflow")
    stopped = topo.run("stop", "mlflow")
    assert stopped.returncode == 0, stopped.stderr
    assert mlflow_pid is not None and not pid_alive(mlflow_pid)
    degraded = "degraded: registry unreachable"
    _wait(lambda: set(_readyz(topo).values()) == {degraded}, ONE_POLL_S, "both replicas degraded")
    during = _diagnose_everywhere(topo, clinician_token, 4)
    assert [[f"{s['model_name']}/{s['version']}" for s in d["specialists"]] for d in during] == [[a1], [a1]]

    # The server comes back: a new approval is picked up by both.
    outage = time.monotonic()
    restarted = topo.run("start", "mlflow")
    assert restarted.returncode == 0, restarted.stderr
    print(f"[topology] MLflow server restarted in {time.monotonic() - outage:.1f} s")
    b2 = _publish(topo, world, "site-b", real_3, monkeypatch)  # its next version
    topo.central("approve", *b2.split("/"), "--reviewer", "dr-central")
    _wait(_all_serve(topo, clinician_token, {a1, b2}), ONE_POLL_S, "the new approval reaches both")
    assert set(_readyz(topo).values()) == {"ready"}

    # Nothing was lost: every audit line and approval from before the outage is still there.
    audit_after = topo.central("audit", "show", "--json")
    assert audit_after[: len(audit_before)] == audit_before and len(audit_after) > len(audit_before)
    statuses = {(m["name"], m["version"]): m["status"] for m in topo.central("models", "list", "--json")}
    assert all(statuses[(m["name"], m["version"])] == m["status"] for m in models_before)
    with topo.hub("hub-2", token) as client:
        hub_audit_after = client.get("/v1/audit", params={"limit": 1000}).json()["entries"]
    assert hub_audit_after[: len(hub_audit_before)] == hub_audit_before
    topo.central("audit", "verify")


def test_backup_wipe_restore_gives_back_the_registry_and_the_served_set(
    topology: Topology, tmp_path: Path
) -> None:
    """`topology backup`, everything wiped (databases, bundles, keys, hub caches), `topology restore`."""
    topo = topology
    token = topo.secrets.get("hub-admin.token")
    serving = _serving(topo, token)
    models = topo.central("models", "list", "--json")
    audit_before = topo.central("audit", "show", "--json")
    with topo.hub("hub-1", token) as client:
        hub_audit = client.get("/v1/audit", params={"limit": 1000}).json()["entries"]
    assert {len(s) for s in serving.values()} == {2}

    backup = topo.run("backup", str(tmp_path / "backup"), "--json")
    assert backup.returncode == 0, backup.stderr
    files = json.loads(backup.stdout)["files"]
    assert {"mlflow.dump", "hub.dump", "auth.db"} <= set(files)
    assert any(name.startswith("artifacts/") and name.endswith("model.onnx") for name in files)

    state_dir = Path(topo.state.state_dir)
    for name in (*topo.state.hubs, "mlflow"):
        assert topo.run("stop", name).returncode == 0
    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for db in (topo.state.mlflow_db, topo.state.hub_db):
            conn.execute(text(f'DROP DATABASE "{db}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{db}"'))
    engine.dispose()
    for folder in ("mlflow/artifacts", "central/keys", *(f"{hub}/hub" for hub in topo.state.hubs)):
        shutil.rmtree(state_dir / folder)
    (state_dir / "mlflow" / "auth.db").unlink()

    restored = topo.run("restore", str(tmp_path / "backup"))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    verify = topo.central("verify", "--all", "--json")
    assert verify["ok"] is True, verify
    assert topo.central("models", "list", "--json") == models
    assert topo.central("audit", "show", "--json") == audit_before
    _wait(lambda: _serving(topo, token) == serving, ONE_POLL_S, "both replicas serve the restored set")
    with topo.hub("hub-2", token) as client:
        assert client.get("/v1/audit", params={"limit": 1000}).json()["entries"] == hub_audit

    # A changed byte in a backup is refused before anything is touched.
    dump = tmp_path / "backup" / "hub.dump"
    dump.write_bytes(dump.read_bytes() + b"x")
    refused = topo.run("restore", str(tmp_path / "backup"))
    assert refused.returncode == 2 and "backup file hub.dump is changed" in refused.stderr
    assert all(DaemonSet(state_dir).pid(name) for name in (*topo.state.hubs, "mlflow"))


def test_down_stops_every_process_and_drops_the_run_databases(topology: Topology) -> None:
    daemons = DaemonSet(Path(topology.state.state_dir))
    pids = {name: daemons.pid(name) for name in daemons.names()}
    assert sorted(pids) == ["hub-1", "hub-2", "mlflow", "superlink"] and all(pids.values())
    status = topology.run("status", "--json")
    assert status.returncode == 0, status.stderr
    services = json.loads(status.stdout)["services"]
    assert services == {name: {"pid": pid, "healthy": True} for name, pid in pids.items()}
    down = topology.run("down", "--json")
    assert down.returncode == 0, down.stderr
    stopped = json.loads(down.stdout)["stopped_pids"]
    assert set(pids.values()) <= set(stopped)
    assert [pid for pid in stopped if pid_alive(pid)] == []
    engine = create_engine(PG_ADMIN)
    with engine.connect() as conn:
        left = conn.execute(
            text("SELECT datname FROM pg_database WHERE datname LIKE :run"),
            {"run": f"gsco_topo_{topology.state.run_id}_%"},
        ).all()
    engine.dispose()
    assert left == []

"""`python -m deploy.local.topology up|down|start|stop|status`: the production topology, natively.

``up`` creates a fresh PostgreSQL database pair for the run (MLflow + the registry's own tables;
the hub's tokens, decisions and audit), writes the MLflow auth config, the central approval key,
the SuperLink's TLS certificates and the hubs' config, then starts the MLflow server, the
SuperLink and the hub replicas and waits for every health check. ``down`` stops every daemon by
PID, checks none is left, and drops the run's databases. ``make up`` / ``make down`` call these.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import typer
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from deploy.local.backup import (
    HUB_DUMP,
    MLFLOW_DUMP,
    StatePaths,
    check_backup,
    create_backup,
    restore_database,
    restore_files,
)
from deploy.local.config import TopologyConfig, load_config
from deploy.local.daemons import Daemon, DaemonSet
from deploy.local.services import (
    ADMIN_PASSWORD,
    FLASK_SECRET,
    HUB_USER,
    MLFLOW,
    SUPERLINK,
    all_daemons,
    hub_name,
    superlink_config,
    user_password,
    write_auth_config,
)
from deploy.local.state import MARKER, RunState, Secrets
from gsco_common.cli import JsonFlag, handle_errors, print_result, top_level_app
from gsco_common.errors import ConfigError, TopologyError
from hub.federation.certs import CertPaths, create_certificates

app = top_level_app("topology", "The native production topology: MLflow server, SuperLink, hub replicas.")
CONFIG_OPT = typer.Option(None, "--config", help="Topology YAML (default deploy/local/topology.yaml).")
SERVICE_ARG = typer.Argument(..., help="mlflow, superlink or hub-N.")
CONFIG_FILE = "config.json"


def _state_dir(config: TopologyConfig) -> Path:
    return config.state_dir.expanduser().resolve()


def _admin_engine(config: TopologyConfig):  # noqa: ANN202  (SQLAlchemy Engine)
    return create_engine(
        config.postgres_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )


def _create_databases(config: TopologyConfig, names: tuple[str, ...], *, replace: bool = False) -> None:
    """Create the run's databases (empty); ``replace`` drops them first (restore)."""
    engine = _admin_engine(config)
    try:
        with engine.connect() as conn:
            for name in names:
                if replace:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError:
        raise TopologyError(
            "PostgreSQL is not reachable with postgres_url",
            hint="start PostgreSQL (127.0.0.1:5432, user postgres) or set GSCO_TOPOLOGY_POSTGRES_URL",
        ) from None
    finally:
        engine.dispose()


def _drop_databases(config: TopologyConfig, names: list[str]) -> None:
    engine = _admin_engine(config)
    try:
        with engine.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def _fresh_state_dir(state_dir: Path) -> None:
    """Empty the state folder of a stopped run; refuse a folder this tool did not make."""
    if state_dir.exists():
        if not (state_dir / MARKER).is_file():
            raise ConfigError(
                f"refusing to use {state_dir}: not a folder made by `make up` (no {MARKER} marker)",
                hint="choose another state_dir",
            )
        if any(DaemonSet(state_dir).pid(name) for name in DaemonSet(state_dir).names()):
            raise TopologyError(f"the topology in {state_dir} is running", hint="run `make down` first")
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True)
    (state_dir / MARKER).touch()


def _plan(config: TopologyConfig, state_dir: Path, run_id: str, names: tuple[str, str]) -> RunState:
    url = make_url(config.postgres_url)
    mlflow_db, hub_db = names
    return RunState(
        run_id=run_id,
        state_dir=str(state_dir),
        mlflow_db=mlflow_db,
        hub_db=hub_db,
        mlflow_db_url=url.set(database=mlflow_db).render_as_string(hide_password=False),
        hub_db_url=url.set(database=hub_db).render_as_string(hide_password=False),
        mlflow_url=config.mlflow_url,
        superlink=f"{config.host}:{config.superlink_port}",
        superlink_ca=str(CertPaths.in_dir(superlink_config(config, state_dir).certs_dir).ca_cert),
        central_home=str(state_dir / "central"),
        central_key=str(state_dir / "central" / "keys" / "approval.pub"),
        hub_config=str(state_dir / "hub.yaml"),
        hubs={hub_name(i): f"http://{config.host}:{port}" for i, port in enumerate(config.hub_ports)},
        object_store=config.object_store,
    )


def bring_up(config: TopologyConfig) -> RunState:
    """Prepare a fresh run and start every daemon; on failure, stop what started and drop the run."""
    if HUB_USER not in config.mlflow_users:
        raise ConfigError(f"topology setting mlflow_users: must contain {HUB_USER!r} (the hubs' account)")
    state_dir = _state_dir(config)
    _fresh_state_dir(state_dir)
    (state_dir / CONFIG_FILE).write_text(config.model_dump_json(indent=2) + "\n")
    run_id = uuid.uuid4().hex[:10]
    names = (f"gsco_topo_{run_id}_mlflow", f"gsco_topo_{run_id}_hub")
    _create_databases(config, names)
    state = _plan(config, state_dir, run_id, names)
    state.save()
    secrets = Secrets(state_dir)
    secrets.create(ADMIN_PASSWORD)
    secrets.create(FLASK_SECRET)
    for user in config.mlflow_users:
        secrets.create(user_password(user))
    try:
        write_auth_config(config, state_dir)
        create_certificates(superlink_config(config, state_dir).certs_dir, hosts=[config.host])
        Path(state.hub_config).write_text(
            yaml.safe_dump({"db_url": state.hub_db_url, "poll_interval_s": config.poll_interval_s})
        )
        from deploy.local import (
            provision,
        )  # MLflow and the registry load in seconds: only up and grant need them

        provision.init_registry(state)
        provision.init_hub_database(state, secrets)
        daemons = DaemonSet(state_dir)
        specs = all_daemons(config, state, secrets)
        for name in (MLFLOW, SUPERLINK):
            daemons.spawn(specs[name])
        daemons.wait_healthy([specs[MLFLOW], specs[SUPERLINK]], config.start_timeout_s)
        provision.create_users(state, config, secrets)
        hubs = [spec for name, spec in specs.items() if name not in (MLFLOW, SUPERLINK)]
        for spec in hubs:
            daemons.spawn(spec)
        daemons.wait_healthy(hubs, config.start_timeout_s)
    except BaseException:
        bring_down(state_dir)
        raise
    return state


def bring_down(state_dir: Path) -> list[int]:
    """Stop every daemon (hubs first) and drop the run's databases; returns the PIDs checked gone."""
    if not (state_dir / MARKER).is_file():
        return []
    daemons = DaemonSet(state_dir)
    stopped: list[int] = []
    for name in sorted(daemons.names(), key=lambda n: (not n.startswith("hub-"), n)):
        stopped += daemons.stop(name)
    config_file = state_dir / CONFIG_FILE
    state_file = state_dir / "topology.json"
    if config_file.is_file() and state_file.is_file():
        config = TopologyConfig.model_validate_json(config_file.read_text())
        state = RunState.load(state_dir)
        _drop_databases(config, [state.mlflow_db, state.hub_db])
        state_file.unlink()
    return stopped


@dataclass(frozen=True)
class _Run:
    """A running topology as ``up`` saved it (its configuration, facts, secrets and daemons)."""

    config: TopologyConfig
    state: RunState
    secrets: Secrets
    daemons: DaemonSet

    @classmethod
    def load(cls, config_file: Path | None) -> _Run:
        state_dir = _state_dir(load_config(config_file))
        state = RunState.load(state_dir)
        saved = TopologyConfig.model_validate_json((state_dir / CONFIG_FILE).read_text())
        return cls(saved, state, Secrets(state_dir), DaemonSet(state_dir))

    def services(self) -> dict[str, Daemon]:
        return all_daemons(self.config, self.state, self.secrets)

    def backup_paths(self) -> StatePaths:
        return StatePaths.of(Path(self.state.state_dir), Path(self.state.central_home))

    def service(self, name: str) -> Daemon:
        services = self.services()
        if name not in services:
            raise ConfigError(f"no service {name!r} in this topology", hint=f"one of {', '.join(services)}")
        return services[name]


@app.command("up")
@handle_errors
def up(config_file: Path | None = CONFIG_OPT, json_out: JsonFlag = False) -> None:
    """Start the whole topology (fresh databases) and wait until every service is healthy."""
    state = bring_up(load_config(config_file))
    print_result(
        json_out, state.__dict__, f"topology up in {state.state_dir}: MLflow {state.mlflow_url}, "
        f"SuperLink {state.superlink} (TLS), hubs {', '.join(state.hubs.values())}",
    )  # fmt: skip


@app.command("down")
@handle_errors
def down(config_file: Path | None = CONFIG_OPT, json_out: JsonFlag = False) -> None:
    """Stop every service by PID, check none is left, and drop the run's databases."""
    state_dir = _state_dir(load_config(config_file))
    stopped = bring_down(state_dir)
    print_result(json_out, {"stopped_pids": stopped}, f"topology down: {len(stopped)} process(es) stopped")


@app.command("stop")
@handle_errors
def stop(name: str = SERVICE_ARG, config_file: Path | None = CONFIG_OPT) -> None:
    """Stop one service (the others keep running)."""
    run = _Run.load(config_file)
    stopped = run.daemons.stop(run.service(name).name)
    print_result(False, None, f"{name} stopped ({len(stopped)} process(es))")


@app.command("start")
@handle_errors
def start(name: str = SERVICE_ARG, config_file: Path | None = CONFIG_OPT) -> None:
    """Start one stopped service again, with the run's configuration, and wait until healthy."""
    run = _Run.load(config_file)
    daemon = run.service(name)
    run.daemons.spawn(daemon)
    run.daemons.wait_healthy([daemon], run.config.start_timeout_s)
    print_result(False, None, f"{name} started")


@app.command("grant")
@handle_errors
def grant(
    task_id: str = typer.Argument(..., help="A task created with `gsco-registry tasks create`."),
    config_file: Path | None = CONFIG_OPT,
) -> None:
    """Let every site account publish to TASK: create its MLflow experiment and grant the sites EDIT."""
    run = _Run.load(config_file)
    from deploy.local import provision  # MLflow and the registry load in seconds: only up and grant need them

    sites = provision.grant_sites(run.config, run.state, run.secrets, task_id)
    print_result(False, None, f"task {task_id}: {', '.join(sites)} may publish")


@app.command("backup")
@handle_errors
def backup(
    out_dir: Path = typer.Argument(..., help="A new folder for the backup (it holds secrets: keep it safe)."),
    config_file: Path | None = CONFIG_OPT,
    json_out: JsonFlag = False,
) -> None:
    """Back up both databases (pg_dump), the artifact store, MLflow accounts, central keys, secrets."""
    run = _Run.load(config_file)
    urls = {"mlflow_db_url": run.state.mlflow_db_url, "hub_db_url": run.state.hub_db_url}
    manifest = create_backup(out_dir, paths=run.backup_paths(), **urls)
    print_result(json_out, manifest, f"backup written to {out_dir}: {len(manifest['files'])} file(s)")


@app.command("restore")
@handle_errors
def restore(
    backup_dir: Path = typer.Argument(..., help="A folder written by `backup`."),
    config_file: Path | None = CONFIG_OPT,
    json_out: JsonFlag = False,
) -> None:
    """Replace this run's registry and hub state with a backup; restarts MLflow and the hubs.

    Every checksum is checked before anything is touched.
    """
    run = _Run.load(config_file)
    manifest = check_backup(backup_dir)
    services = run.services()
    hubs = [name for name in services if name not in (MLFLOW, SUPERLINK)]
    for name in (*hubs, MLFLOW):
        run.daemons.stop(name)
    _create_databases(run.config, (run.state.mlflow_db, run.state.hub_db), replace=True)
    restore_database(backup_dir / MLFLOW_DUMP, run.state.mlflow_db_url)
    restore_database(backup_dir / HUB_DUMP, run.state.hub_db_url)
    restore_files(backup_dir, run.backup_paths())
    services = run.services()  # the restored secrets
    for group in ([MLFLOW], hubs):
        for name in group:
            run.daemons.spawn(services[name])
        run.daemons.wait_healthy([services[name] for name in group], run.config.start_timeout_s)
    print_result(json_out, manifest, f"restored the backup of {manifest['created_at']}; services healthy")


@app.command("status")
@handle_errors
def status(config_file: Path | None = CONFIG_OPT, json_out: JsonFlag = False) -> None:
    """Each service: its PID (null when stopped) and whether its health check passes."""
    run = _Run.load(config_file)
    services = {}
    for name, daemon in run.services().items():
        pid = run.daemons.pid(name)
        services[name] = {"pid": pid, "healthy": pid is not None and daemon.healthy()}
    lines = [f"{n}\t{s['pid'] or '-'}\t{'healthy' if s['healthy'] else 'DOWN'}" for n, s in services.items()]
    print_result(json_out, {"run": run.state.__dict__, "services": services}, "\n".join(lines))


if __name__ == "__main__":
    app()

"""The topology's daemons: ``mlflow`` server, the TLS ``superlink``, and the ``hub-N`` replicas.

Each is the real command an operator would run (``mlflow server --app-name basic-auth``,
``flower-superlink`` as :class:`hub.federation.superlink.SuperLinkConfig` builds it, ``gsco-hub
serve``), with its credentials in the environment, never on the command line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from deploy.local.config import TopologyConfig
from deploy.local.daemons import Daemon, http_ok, tls_ok
from deploy.local.state import RunState, Secrets
from hub.federation.flwr_cli import flower_env, venv_bin
from hub.federation.superlink import SuperLinkConfig

MLFLOW = "mlflow"
SUPERLINK = "superlink"
ADMIN_PASSWORD = "mlflow-admin.password"
FLASK_SECRET = "mlflow-flask.secret"
HUB_USER = "hub"


def user_password(user: str) -> str:
    """The secret file holding an MLflow account's password."""
    return f"mlflow-{user}.password"


def hub_name(index: int) -> str:
    return f"hub-{index + 1}"


def write_auth_config(config: TopologyConfig, state_dir: Path) -> Path:
    """MLflow's basic-auth config (``MLFLOW_AUTH_CONFIG_PATH``); the admin password stays in the env.

    ``auth_cache_ttl_seconds``: without it every request re-runs PBKDF2 (docs/registry.md).
    """
    folder = state_dir / MLFLOW
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "auth.ini"
    path.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{folder / 'auth.db'}\n"
        f"admin_username = {config.mlflow_admin}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "auth_cache_ttl_seconds = 60\n"
    )
    return path


def artifacts_destination(config: TopologyConfig, state_dir: Path) -> str:
    if config.object_store == "s3":
        return str(config.s3_bucket_url)
    return str(state_dir / MLFLOW / "artifacts")


def mlflow_daemon(config: TopologyConfig, state: RunState, secrets: Secrets) -> Daemon:
    state_dir = Path(state.state_dir)
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(state_dir / MLFLOW / "auth.ini"),
        "MLFLOW_AUTH_ADMIN_PASSWORD": secrets.get(ADMIN_PASSWORD),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.get(FLASK_SECRET),
    }
    if config.s3_endpoint_url:
        env["MLFLOW_S3_ENDPOINT_URL"] = config.s3_endpoint_url
    command = [
        str(Path(sys.executable).with_name("mlflow")), "server",
        "--app-name", "basic-auth",
        "--backend-store-uri", state.mlflow_db_url,
        "--serve-artifacts", "--artifacts-destination", artifacts_destination(config, state_dir),
        "--host", config.host, "--port", str(config.mlflow_port), "--workers", "1",
    ]  # fmt: skip
    return Daemon(MLFLOW, command, env, http_ok(f"{state.mlflow_url}/health"))


def superlink_config(config: TopologyConfig, state_dir: Path) -> SuperLinkConfig:
    folder = state_dir / SUPERLINK
    return SuperLinkConfig(
        home=folder, host=config.host, port=config.superlink_port, certs_dir=folder / "certs"
    )


def superlink_daemon(config: TopologyConfig, state: RunState) -> Daemon:
    link = superlink_config(config, Path(state.state_dir))
    return Daemon(
        SUPERLINK,
        link.command(),
        flower_env(link.home / "flwr"),
        tls_ok(config.host, config.superlink_port, link.certs().ca_cert),
    )


def hub_daemon(config: TopologyConfig, state: RunState, secrets: Secrets, index: int) -> Daemon:
    """Replica ``index``: its own home (bundle cache, sequence guard), the shared hub database."""
    name = hub_name(index)
    command = [
        venv_bin("gsco-hub"),
        "--home", str(Path(state.state_dir) / name),
        "--tracking-uri", state.mlflow_url,
        "--db-uri", state.mlflow_db_url,
        "--central-key", state.central_key,
        "serve", "--host", config.host, "--port", str(config.hub_ports[index]),
        "--config", state.hub_config,
    ]  # fmt: skip
    env = {
        **os.environ,
        "MLFLOW_TRACKING_USERNAME": HUB_USER,
        "MLFLOW_TRACKING_PASSWORD": secrets.get(user_password(HUB_USER)),
    }
    return Daemon(name, command, env, http_ok(f"{state.hubs[name]}/healthz"))


def all_daemons(config: TopologyConfig, state: RunState, secrets: Secrets) -> dict[str, Daemon]:
    """Every daemon of the run, in start order."""
    daemons = {
        MLFLOW: mlflow_daemon(config, state, secrets),
        SUPERLINK: superlink_daemon(config, state),
    }
    for index in range(config.hub_replicas):
        daemons[hub_name(index)] = hub_daemon(config, state, secrets, index)
    return daemons

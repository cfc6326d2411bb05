"""What ``up`` and ``grant`` set up inside the services (accounts, tables, keys, permissions).

MLflow accounts and experiment permissions, the registry's tables and central key, the shared
hub database.

Kept apart from the CLI because it loads MLflow and the registry (seconds), which ``down``,
``stop``, ``start`` and ``status`` never need.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from deploy.local.config import TopologyConfig
from deploy.local.services import ADMIN_PASSWORD, HUB_USER, user_password
from deploy.local.state import RunState, Secrets
from gsco_common.errors import TopologyError
from gsco_common.keys import PASSPHRASE_ENV
from hub.service.database import HubDatabase
from hub.service.tokens import TokenStore
from registry.config import RegistryConfig
from registry.service import Registry
from registry.store.models import ModelStore
from registry.store.retry import mlflow_errors

PASSPHRASE_FILE = "central-key.passphrase"
HUB_ADMIN_TOKEN = "hub-admin.token"


def create_users(state: RunState, config: TopologyConfig, secrets: Secrets) -> None:
    """One MLflow account per configured user (MLflow's REST ``users/create``, as the admin)."""
    auth = (config.mlflow_admin, secrets.get(ADMIN_PASSWORD))
    for user in config.mlflow_users:
        answer = httpx.post(
            f"{state.mlflow_url}/api/2.0/mlflow/users/create",
            json={"username": user, "password": secrets.get(user_password(user))},
            auth=auth,
            timeout=60,
        )
        if answer.status_code != 200:
            raise TopologyError(f"MLflow refused to create the user {user} ({answer.status_code})")


def init_registry(state: RunState) -> None:
    """Registry tables in the run's database and the central approval key (GSCO_KEY_PASSPHRASE)."""
    secrets = Secrets(Path(state.state_dir))
    if not os.environ.get(PASSPHRASE_ENV):
        os.environ[PASSPHRASE_ENV] = secrets.create(PASSPHRASE_FILE)
    config = RegistryConfig.resolve(
        home=state.central_home, tracking_uri=state.mlflow_url, db_uri=state.mlflow_db_url
    )
    registry, _ = Registry.init(config)
    registry.close()


def init_hub_database(state: RunState, secrets: Secrets) -> None:
    """Create the shared hub tables once (before two replicas race for it) and an admin token."""
    db = HubDatabase(state.hub_db_url)
    try:
        secrets.put(HUB_ADMIN_TOKEN, TokenStore(db).create("admin", "topology-operator")[1])
    finally:
        db.close()


def grant_sites(config: TopologyConfig, state: RunState, secrets: Secrets, task_id: str) -> list[str]:
    """Create the task's experiment as the admin and grant every site account EDIT on it.

    MLflow gives the creator of an experiment MANAGE and everyone else ``default_permission``
    (READ), so without this the second site to publish a task is refused.
    """
    admin = (config.mlflow_admin, secrets.get(ADMIN_PASSWORD))
    os.environ.update({"MLFLOW_TRACKING_USERNAME": admin[0], "MLFLOW_TRACKING_PASSWORD": admin[1]})
    registry = RegistryConfig.resolve(
        home=state.central_home, tracking_uri=state.mlflow_url, db_uri=state.mlflow_db_url
    )
    with mlflow_errors(f"creating the experiment of task {task_id}"):
        experiment = ModelStore(registry).ensure_experiment(task_id)
    sites = [user for user in config.mlflow_users if user != HUB_USER]
    for user in sites:
        grant = {
            "username": user,
            "resource_type": "experiment",
            "resource_id": experiment,
            "permission": "EDIT",
        }
        answer = httpx.post(
            f"{state.mlflow_url}/api/3.0/mlflow/users/permissions/grant", json=grant, auth=admin, timeout=60
        )
        if answer.status_code != 200:
            raise TopologyError(
                f"MLflow refused to grant {user} EDIT on task {task_id} ({answer.status_code})"
            )
    return sites

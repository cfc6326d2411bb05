"""Security fixtures: a victim registry whose sites publish the real specialists, and an attacker's own.

The victim registry enrolls the sites of ``tests.site_bundle.REAL_SITES``; the attacks move,
forge and replay the bundles those sites exported (``publish_real``), never stand-ins.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bench.world import World, make_world
from registry.config import RegistryConfig
from registry.pinning import PINNED_KEY_RELPATH
from registry.store import audit
from registry.store.database import Tables
from registry.store.tables import AuditRow
from tests.site_bundle import SiteBundle, make_real_world

DOWN_URI = "postgresql+psycopg2://hub@127.0.0.1:9/mlflow"


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory, real_specialists: tuple[SiteBundle, ...]) -> World:
    """The real registry (MLflow on SQLite + own tables) with the real sites real-1..3 enrolled."""
    return make_real_world(tmp_path_factory.mktemp("victim"), real_specialists)


@pytest.fixture(scope="session")
def attacker(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A registry the attacker controls: own central key, own sites site-a and site-b (own keys)."""
    return make_world(tmp_path_factory.mktemp("attacker"))


@pytest.fixture
def offline_hub(world: World, tmp_path: Path) -> RegistryConfig:
    """A hub whose registry is unreachable; its home holds the pinned key copied at install."""
    home = tmp_path / "hub-home"
    (home / PINNED_KEY_RELPATH).parent.mkdir(parents=True)
    shutil.copy(world.config.approval_pub_path, home / PINNED_KEY_RELPATH)
    return RegistryConfig.resolve(home=home, tracking_uri=DOWN_URI, retries=0)


def run_sql(world: World, statement: str, **params: object) -> None:
    """What an attacker with write access to the registry database does."""
    tables = Tables(world.config.tables_uri)
    with tables.engine.begin() as conn:
        conn.execute(text(statement), params)
    tables.dispose()


def rechain(world: World) -> None:
    """Recompute every hash of the audit chain after an edit, as a careful attacker would."""
    tables = Tables(world.config.tables_uri)
    with tables.session() as session:
        prev = audit.GENESIS
        for row in session.scalars(select(AuditRow).order_by(AuditRow.seq)):
            row.prev_hash = prev
            row.entry_hash = audit._entry_hash(
                row.seq, row.at, row.actor, row.action, row.subject, row.details, prev
            )
            prev = row.entry_hash
    tables.dispose()

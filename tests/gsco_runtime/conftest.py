"""Runtime fixtures: one real registry for the session (tasks isolate tests), cache folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gsco_common.keys import generate_key_pair, load_private_key
from gsco_runtime.config import RuntimeSettings
from tests.gsco_runtime.world import World, make_world
from tests.site_bundle import LABELS, TASK, SiteBundle, enroll_real_sites


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A registry (MLflow on SQLite + own tables) with two enrolled sites, site-a and site-b."""
    return make_world(tmp_path_factory.mktemp("world"))


@pytest.fixture
def settings(tmp_path: Path) -> RuntimeSettings:
    """Runtime settings with a private hub home and a short poll interval."""
    return RuntimeSettings(home=tmp_path / "hub-home", poll_interval_s=0.3, threads=2)


@pytest.fixture
def central_key(tmp_path: Path) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """A central approval key pair made for the test: (private key, public PEM)."""
    keys, passphrase = tmp_path / "central", os.environ["GSCO_KEY_PASSPHRASE"].encode()
    generate_key_pair(keys / "approval.key", keys / "approval.pub", passphrase)
    return load_private_key(keys / "approval.key", passphrase), (keys / "approval.pub").read_bytes()


@pytest.fixture(scope="session")
def real(world: World, real_specialists: tuple[SiteBundle, ...]) -> tuple[SiteBundle, ...]:
    """The real specialists, their sites (``REAL_SITES``) enrolled in the session registry."""
    enroll_real_sites(world, real_specialists)
    return real_specialists


@pytest.fixture(scope="session")
def site_model(world: World, real: tuple[SiteBundle, ...], site_bundle: SiteBundle) -> tuple[str, str]:
    """The site agent's real bundle, published and approved in the session registry under its own task."""
    world.new_task(LABELS, task_id=TASK)
    return world.publish_folder(site_bundle.folder)

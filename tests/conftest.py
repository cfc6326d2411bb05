"""Shared fixtures: real MedMNIST data from ../shared/data when present, generated data otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import gsco_common  # noqa: F401  (first: switches third-party telemetry off for the test process too)
from bench.world import World
from site_agent.data.synthetic import write_synthetic_npz
from tests.site_bundle import SiteBundle, make_real_world, session_site_bundle

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("GSCO_KEY_PASSPHRASE", "test-passphrase-123")


def pytest_report_header(config: pytest.Config) -> str:
    """Say in the test output which data the data-dependent tests use."""
    if (SHARED_DATA / "pneumoniamnist_dev.npz").is_file():
        return f"data: real MedMNIST dev files from {SHARED_DATA}"
    return "data: ../shared/data is absent, tests use small generated (synthetic) data"


@pytest.fixture(scope="session")
def dev_npz(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``(path, "real")`` for ../shared/data/pneumoniamnist_dev.npz, else a synthetic stand-in."""
    real = SHARED_DATA / "pneumoniamnist_dev.npz"
    if real.is_file():
        print(f"[data] using real MedMNIST dev data: {real.name}")
        return real, "real"
    path = write_synthetic_npz(tmp_path_factory.mktemp("dev") / "synthetic_dev.npz", n_per_class=150)
    print("[data] ../shared/data is absent: using generated synthetic data")
    return path, "synthetic"


@pytest.fixture(scope="session")
def site_bundle(tmp_path_factory: pytest.TempPathFactory) -> SiteBundle:
    """A bundle trained and exported by the site agent's real path, once per session (seconds)."""
    return session_site_bundle(tmp_path_factory.mktemp("site-bundle"), seed=0)


@pytest.fixture(scope="session")
def real_specialists(
    site_bundle: SiteBundle, tmp_path_factory: pytest.TempPathFactory
) -> tuple[SiteBundle, ...]:
    """Three specialists trained and exported by the site agent's real path, once per session.

    ``site_bundle`` (seed 0) and two more, each with its own seed and generated data (seconds
    each), one per site of ``tests.site_bundle.REAL_SITES``; the hub and runtime tests serve them
    through ``tests.site_bundle.publish_real``. Not seed 2: its two epochs end on one class
    (balanced accuracy 0.5), below the approval policy's floor.
    """
    root = tmp_path_factory.mktemp("real-specialists")
    return (site_bundle, *(session_site_bundle(root / f"seed{seed}", seed=seed) for seed in (1, 3)))


@pytest.fixture
def own_world(tmp_path: Path, real_specialists: tuple[SiteBundle, ...]) -> World:
    """A registry of the test's own with the real specialists' sites enrolled (about 2 s).

    For attacks that edit the registry database and for tests that revoke a real specialist: the
    registry revokes a model in every task, and the session registries keep serving it.
    """
    return make_real_world(tmp_path / "own-world", real_specialists)

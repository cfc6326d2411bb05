"""Federation fixtures: non-IID site slices of the dev data and real one-machine federations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.demo.local_federation import LocalFederation
from registry.config import RegistryConfig
from site_agent.data.synthetic import write_synthetic_npz

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def dev_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real PneumoniaMNIST dev file when present, else a generated stand-in (says which)."""
    real = SHARED_DATA / "pneumoniamnist_dev.npz"
    if real.is_file():
        print(f"[data] federation tests use real MedMNIST dev data: {real.name}")
        return real
    print("[data] ../shared/data is absent: federation tests use generated synthetic data")
    return write_synthetic_npz(tmp_path_factory.mktemp("dev") / "synthetic_dev.npz", n_per_class=300)


@pytest.fixture
def make_federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Build :class:`LocalFederation` s whose processes are always stopped and checked by PID."""
    made: list[LocalFederation] = []

    def build(*, tls: bool = False) -> LocalFederation:
        workdir = tmp_path_factory.mktemp("federation")
        federation = LocalFederation(workdir, RegistryConfig.resolve(home=workdir / "registry"), tls=tls)
        made.append(federation)
        return federation

    try:
        yield build
    finally:
        for federation in made:
            federation.stop()

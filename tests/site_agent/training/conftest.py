"""Training fixtures: a tiny synthetic dataset and a site, so each run takes a few seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from site_agent.config import SiteConfig, render_site_template, validate_site_config
from site_agent.data.config import DataConfig
from site_agent.data.loader import load_site_data
from site_agent.data.synthetic import write_synthetic_npz
from specialist.data import SiteData
from specialist.training.config import TrainingConfig

LABELS = ["normal", "abnormal"]


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated (synthetic) MedMNIST-layout data: 32 train and 8 val images per class, 28 px."""
    print("[data] training tests use generated synthetic data (speed), not ../shared/data")
    return write_synthetic_npz(tmp_path_factory.mktemp("tiny") / "tiny.npz", n_per_class=32, val_per_class=8)


@pytest.fixture(scope="session")
def site_config() -> SiteConfig:
    text = render_site_template("Test Site", "toy-task", LABELS, "synthetic test images")
    return validate_site_config(yaml.safe_load(text))


@pytest.fixture(scope="session")
def tiny_data(tiny_npz: Path) -> DataConfig:
    return DataConfig(path=tiny_npz)


@pytest.fixture(scope="session")
def tiny_site_data(tiny_data: DataConfig) -> SiteData:
    return load_site_data(tiny_data, LABELS, seed=0)


@pytest.fixture(scope="session")
def fast_training() -> TrainingConfig:
    """resnet18 at 28 px, 2 epochs of 4 steps, CPU."""
    return TrainingConfig(image_size=28, epochs=2, batch_size=16, device="cpu")

"""Shared fixtures: real MedMNIST data from ../shared/data when present, generated data otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import registry  # noqa: F401  (first: switches third-party telemetry off for the test process too)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("GSCO_KEY_PASSPHRASE", "test-passphrase-123")


def pytest_report_header(config: pytest.Config) -> str:
    """Say in the test output which data the data-dependent tests use."""
    if (SHARED_DATA / "pneumoniamnist_dev.npz").is_file():
        return f"data: real MedMNIST dev files from {SHARED_DATA}"
    return "data: ../shared/data is absent, tests use small generated (synthetic) data"

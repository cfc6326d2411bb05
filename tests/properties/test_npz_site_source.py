"""The site's ``.npz`` data source, through ``load_site_data``: a hostile file is a DataError."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given

from site_agent.data.config import DataConfig
from site_agent.data.loader import load_site_data
from tests.properties.hostile import PROPERTY, only_own_errors
from tests.properties.npz_files import HOSTILE_NPZ


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("site-npz") / "data.npz"


@PROPERTY
@given(data=HOSTILE_NPZ)
def test_a_hostile_npz_is_read_or_refused_with_a_data_error(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    config = DataConfig(path=path, kind="npz", val_fraction=0.25, test_fraction=0.0)
    only_own_errors(lambda: load_site_data(config, ["normal", "pneumonia"], seed=0))

"""The hub's case-library npz reader: a hostile file is a DataError, never another exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gsco_runtime.cases.readers import read_cases
from tests.properties.hostile import PROPERTY, only_own_errors
from tests.properties.npz_files import HOSTILE_NPZ


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("case-npz") / "cases.npz"


@PROPERTY
@given(data=HOSTILE_NPZ, split=st.sampled_from(["train", "val", "test"]))
def test_a_hostile_npz_is_read_or_refused_with_a_data_error(path: Path, data: bytes, split: str) -> None:
    path.write_bytes(data)
    only_own_errors(lambda: read_cases(path, ["normal", "pneumonia"], split=split, kind="npz"))

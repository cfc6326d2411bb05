"""A collection's decoded images are held in memory: the site's readers stop at GSCO_MAX_ARRAY_BYTES."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gsco_common.errors import InputLimitError
from registry.input_limits import MAX_ARRAY_BYTES_ENV
from site_agent.data.config import DataConfig
from site_agent.data.sources import get_source

COUNTS = {"normal": 2, "abnormal": 2}


@pytest.mark.parametrize(
    ("kind", "builder"),
    [("imagefolder", "make_image_folder"), ("csv", "make_csv_manifest"), ("dicom", "make_dicom_folder")],
)
def test_each_reader_stops_at_the_image_that_passes_the_limit(
    kind: str, builder: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    build: Callable[..., Path] = request.getfixturevalue(builder)
    root = build(COUNTS)
    config = DataConfig(path=root, kind=kind)
    read = get_source(kind)(config, root)
    total = sum(item.image.nbytes for item in read.items if item.image is not None)
    assert len(read.items) == 4 and total > 0
    monkeypatch.setenv(MAX_ARRAY_BYTES_ENV, str(total))  # exactly enough: read as before
    assert len(get_source(kind)(config, root).items) == 4
    monkeypatch.setenv(MAX_ARRAY_BYTES_ENV, str(total - 1))
    with pytest.raises(InputLimitError) as refused:
        get_source(kind)(config, root)
    assert refused.value.message == (
        f"data.path: the decoded images pass {total - 1} bytes at image 4 ({MAX_ARRAY_BYTES_ENV})"
    )
    assert str(root) not in refused.value.message + (refused.value.hint or "")

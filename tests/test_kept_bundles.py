"""The real specialists kept between test sessions (``GSCO_TEST_BUNDLES``, set by ``bench/mutation.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.site_bundle import KEPT_BUNDLES_ENV, session_site_bundle


def test_a_kept_specialist_is_made_once_and_then_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEPT_BUNDLES_ENV, str(tmp_path / "kept"))
    made = session_site_bundle(tmp_path / "fresh", seed=5)
    assert made.folder.is_relative_to(tmp_path / "kept" / "seed5") and not (tmp_path / "fresh").exists()
    again = session_site_bundle(tmp_path / "fresh", seed=5)
    assert again == made  # a retrain would give a new model uid, and another bundle digest
    assert again.card["model_uid"] == made.report.model_uid

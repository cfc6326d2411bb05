"""docs/results.md's studies section and each study.md: exactly what the committed study.json render to."""

from __future__ import annotations

from bench.docs_section import DOCS
from bench.render_results import ORDER, STUDIES_DIR, render, section, study_names, study_reports


def test_results_section_is_rendered_from_the_committed_studies() -> None:
    rendered = "\n".join(render()).rstrip() + "\n"
    assert section(DOCS / "results.md") == rendered, "run: python bench/render_results.py --write"


def test_study_reports_are_rendered_from_their_study_json() -> None:
    for path, text in study_reports().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} differs: python bench/render_results.py --write"
        )


def test_every_committed_study_is_rendered_in_order() -> None:
    committed = {p.parent.name for p in STUDIES_DIR.glob("*/study.json")}
    assert set(study_names()) == committed and set(ORDER) >= committed

"""The mutation score table in docs/testing.md is the kept results in bench/mutation_results/."""

from __future__ import annotations

from bench.docs_section import DOCS, generated_sections
from bench.mutation import DOC, MODULES, SCORE_SECTION, score_lines, stored_results


def test_the_docs_table_is_written_from_the_kept_results() -> None:
    section = next(s for s in generated_sections((DOCS / DOC).read_text()) if s.heading == SCORE_SECTION)
    assert section.body.strip() == "\n".join(score_lines(stored_results())[1:]).strip()


def test_a_module_without_a_kept_result_keeps_its_row_as_not_run_yet() -> None:
    lines = score_lines([])
    assert [line for line in lines if line.startswith("| `")] == [
        f"| `{module}` | not run yet | | | | |" for module in MODULES
    ]
    assert (
        f"{len(MODULES)} of {len(MODULES)} modules have no kept result yet (`--module M` scores one)."
        in lines
    )

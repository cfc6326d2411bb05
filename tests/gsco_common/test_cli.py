"""`print_table`: a listing as JSON for scripts or a table for people."""

from __future__ import annotations

import json
import re

import pytest

from gsco_common.cli import print_table


def test_print_table_gives_scripts_json_and_people_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    data = [{"name": "site-a", "status": "active"}, {"name": "site-b", "status": "revoked"}]
    rows = [("site-a", "active"), ("site-b", "revoked")]
    print_table(True, data, ("site", "status"), rows)
    assert json.loads(capsys.readouterr().out) == data
    print_table(False, data, ("site", "status"), rows)
    lines = [line for line in capsys.readouterr().out.splitlines() if line[0] in "│┃"]
    assert [[cell.strip() for cell in re.split("[│┃]", line)[1:-1]] for line in lines] == [
        ["site", "status"],
        ["site-a", "active"],
        ["site-b", "revoked"],
    ]

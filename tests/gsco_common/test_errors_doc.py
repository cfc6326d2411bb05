"""docs/errors.md documents every error class of gsco_common/errors.py with its code and exit code."""

from __future__ import annotations

import re
from pathlib import Path

from gsco_common.errors import all_error_classes

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def test_every_error_class_is_documented_with_its_code_and_exit_code() -> None:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*(GSCO-\d{3})\s*\|\s*`(\w+)`\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|", line)
        if match:
            rows[match.group(2)] = (match.group(1), int(match.group(3)), int(match.group(4)))
    missing = [cls.__name__ for cls in all_error_classes() if cls.__name__ not in rows]
    assert not missing, f"undocumented in docs/errors.md: {missing}"
    for cls in all_error_classes():
        assert rows[cls.__name__] == (cls.code, cls.exit_code, cls.http_status), cls.__name__


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in all_error_classes()]
    assert len(codes) == len(set(codes))

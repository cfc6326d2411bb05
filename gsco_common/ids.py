"""The ids every package agrees on: the task-id and case-id patterns and a model version's key.

Cards, registry, hub and site share the task-id pattern (``pneumonia``, ``derma.v2``).
"""

from __future__ import annotations

import re

TASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
TASK_ID = re.compile(TASK_ID_PATTERN)
# A case id of the hub's case library travels in URLs (``/v1/cases/<task>/<case>/thumbnail``).
CASE_ID = re.compile(TASK_ID_PATTERN)


def version_key(name: str, version: str) -> str:
    """A model version's identity, ``NAME/VERSION``.

    The pool, the signed approved set, the alias check and the audit log's subjects all write it
    so, and compare it with each other.
    """
    return f"{name}/{version}"

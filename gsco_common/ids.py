"""The one pattern of a task id (``pneumonia``, ``derma.v2``): cards, registry, hub and site agree."""

from __future__ import annotations

import re

TASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
TASK_ID = re.compile(TASK_ID_PATTERN)

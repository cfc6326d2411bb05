"""The hub: the federation coordinator and the clinicians' CLI (cases, diagnose, evaluate)."""

import gsco_common  # noqa: F401  (first: importing it switches third-party telemetry off)

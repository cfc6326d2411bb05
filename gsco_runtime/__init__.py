"""GSCo runtime: hot-loaded specialists (MoED), retrieval (RAD) and an arbiter that decides."""

import gsco_common  # noqa: F401  (first: importing it switches third-party telemetry off)

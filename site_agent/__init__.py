"""The site agent: trains, exports, signs and publishes specialists at a hospital."""

import gsco_common  # noqa: F401  (first: importing it switches third-party telemetry off)

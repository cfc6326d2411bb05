"""The central registry of GSCo specialists (MLflow-backed): bundles, review, trust, audit.

It imports only :mod:`gsco_common` of ours (first: importing it switches third-party usage
telemetry off) and never torch or flwr, so the registry's CLI and server stay light.
"""

import gsco_common  # noqa: F401  (first: importing it switches third-party telemetry off)

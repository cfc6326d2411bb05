"""What a specialist is: backbones, task, training loop, metrics, ONNX export, card, bundle.

Both the site (which trains one) and the hub (which aggregates one across sites) import it; it
imports nothing of ours but :mod:`registry.bundle` (the format) and :mod:`gsco_common`.
"""

import gsco_common  # noqa: F401  (first: importing it switches third-party telemetry off)

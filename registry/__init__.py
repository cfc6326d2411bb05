"""The central registry of GSCo specialists (MLflow-backed): keys, bundles, review, audit.

Hospitals are air-gapped and the registry must not report its own use: MLflow's usage telemetry
is switched off here, before any registry module imports MLflow (an operator who sets
``MLFLOW_DISABLE_TELEMETRY`` explicitly keeps their choice).
"""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

"""Usage telemetry of the libraries GSCo uses, switched off before any of them is imported.

Hospitals are air-gapped and nothing may report its own use. Importing :mod:`gsco_common` runs
this module, and every GSCo package imports ``gsco_common`` first (its ``__init__``); it imports
nothing itself. An operator who sets one of these variables explicitly keeps their choice.

* MLflow's usage telemetry (``MLFLOW_DISABLE_TELEMETRY``);
* onnxruntime's telemetry: its Linux wheels (1.32) create a persistent device id and an event
  store under ``~/.cache/Microsoft`` at the first session, for upload to Microsoft, unless
  ``ORT_DISABLE_TELEMETRY`` is set before onnxruntime is imported;
* Flower's telemetry and update check, also for Flower code running in this process.
"""

import os

NO_TELEMETRY = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "ORT_DISABLE_TELEMETRY": "1",
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
}
for _name, _value in NO_TELEMETRY.items():
    os.environ.setdefault(_name, _value)

# Set explicitly (not setdefault) on the environment of the Flower processes GSCo starts itself.
QUIET_FLOWER_ENV = {name: value for name, value in NO_TELEMETRY.items() if name.startswith("FLWR_")}

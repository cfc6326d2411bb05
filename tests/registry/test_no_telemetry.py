"""Nothing phones home: MLflow's usage telemetry is off wherever the registry is used."""

from __future__ import annotations

import os
import subprocess
import sys


def test_importing_the_registry_switches_mlflow_telemetry_off() -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")
    }
    env = {key: value for key, value in env.items() if not key.startswith("PYTEST")}
    code = (
        "import registry.service\n"
        "import mlflow.telemetry.utils as t\n"
        "print(t.MLFLOW_DISABLE_TELEMETRY.get())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "True"

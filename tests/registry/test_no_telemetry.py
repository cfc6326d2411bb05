"""Nothing phones home: MLflow's and onnxruntime's telemetry are off wherever GSCo code runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


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


TINY_SESSION = """
import onnxruntime as ort
from onnx import TensorProto, helper
graph = helper.make_graph(
    [helper.make_node("Relu", ["x"], ["y"])], "g",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
print("session ok")
"""


@pytest.mark.parametrize(
    "module", ["specialist.export.onnx_export", "gsco_runtime.pool.specialist", "hub.cli.main", "registry"]
)
def test_onnxruntime_leaves_no_device_id_or_event_store(module: str, tmp_path: Path) -> None:
    # onnxruntime 1.32's Linux wheels write a persistent device id and a telemetry event store
    # under ~/.cache/Microsoft (and a session file in the temp folder) for upload, unless told
    # not to before they are imported.
    env = {key: value for key, value in os.environ.items() if key != "ORT_DISABLE_TELEMETRY"}
    env = {key: value for key, value in env.items() if not key.startswith(("PYTEST", "XDG_"))}
    home, temp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    temp.mkdir()
    env.update(HOME=str(home), TMPDIR=str(temp))
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}\n{TINY_SESSION}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert done.stdout.strip().splitlines()[-1] == "session ok"
    assert not (home / ".cache" / "Microsoft").exists(), sorted(p.name for p in home.rglob("*"))
    assert not (temp / ".ses").exists(), "onnxruntime's telemetry session file"

"""`diagnose` and `evaluate` declare every generalist flag that GeneralistOptions.from_params reads."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

from hub.cli.context import GENERALIST_FLAGS, GeneralistOptions
from hub.cli.diagnose_cmd import diagnose
from hub.cli.evaluate_cmd import evaluate_cmd


def test_every_option_field_has_a_flag_and_both_commands_declare_them() -> None:
    assert sorted(GENERALIST_FLAGS.values()) == sorted(f.name for f in dataclasses.fields(GeneralistOptions))
    for command in (diagnose, evaluate_cmd):
        assert set(GENERALIST_FLAGS) <= set(inspect.signature(command).parameters), command.__name__


def test_options_are_read_by_parameter_name() -> None:
    params = {
        "task": "pneumonia",
        "generalist": "openai",
        "generalist_url": "http://gpu-host:8000",
        "generalist_model": "MedDr",
        "model_dir": Path("/models/meddr"),
        "device": "cuda",
        "generalist_timeout": 30.0,
        "generalist_retries": 1,
        "max_tokens": 64,
    }
    assert GeneralistOptions.from_params(params) == GeneralistOptions(
        kind="openai",
        url="http://gpu-host:8000",
        model="MedDr",
        model_dir=Path("/models/meddr"),
        device="cuda",
        timeout_s=30.0,
        retries=1,
        max_tokens=64,
    )

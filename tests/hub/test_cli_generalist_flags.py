"""`diagnose` and `evaluate` take every generalist flag, parsed into one GeneralistOptions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hub.cli.context import GENERALIST_FLAGS, GeneralistCommand, GeneralistOptions, generalist_options
from hub.cli.main import app


def _parsed(*args: str) -> GeneralistOptions:
    seen: list[GeneralistOptions] = []
    probe = typer.Typer()

    @probe.command(cls=GeneralistCommand)
    def run(ctx: typer.Context, task: str = typer.Option(..., "--task")) -> None:
        assert task == "pneumonia"
        seen.append(generalist_options(ctx))

    result = CliRunner().invoke(probe, ["--task", "pneumonia", *args])
    assert result.exit_code == 0, result.output
    return seen[0]


def test_every_option_field_has_a_flag_and_both_commands_take_them() -> None:
    fields = [f.name for f in dataclasses.fields(GeneralistOptions)]
    assert [(flag.name or "").removeprefix("generalist_option_") for flag in GENERALIST_FLAGS] == fields
    commands = typer.main.get_command(app).commands
    for name in ("diagnose", "evaluate"):
        flags = {opt for param in commands[name].params for opt in param.opts}
        assert {"--generalist", "--generalist-url", "--model-dir", "--max-tokens"} <= flags, name


def test_flags_are_parsed_into_the_options_and_defaults_match_the_dataclass() -> None:
    assert _parsed() == GeneralistOptions()
    assert _parsed(
        "--generalist",
        "openai",
        "--generalist-url",
        "http://gpu-host:8000",
        "--generalist-model",
        "MedDr-2",
        "--model-dir",
        "/models/meddr",
        "--device",
        "cuda",
        "--generalist-timeout",
        "30",
        "--generalist-retries",
        "1",
        "--max-tokens",
        "64",
    ) == GeneralistOptions(
        kind="openai",
        url="http://gpu-host:8000",
        model="MedDr-2",
        model_dir=Path("/models/meddr"),
        device="cuda",
        timeout_s=30.0,
        retries=1,
        max_tokens=64,
    )


def test_a_commands_own_option_named_like_a_field_keeps_its_value() -> None:
    """evaluate's --kind (the data format) and --generalist (whose field is ``kind``) coexist."""
    seen: list[tuple[str, GeneralistOptions]] = []
    probe = typer.Typer()

    @probe.command(cls=GeneralistCommand)
    def run(ctx: typer.Context, kind: str = typer.Option("auto", "--kind")) -> None:
        seen.append((kind, generalist_options(ctx)))

    result = CliRunner().invoke(probe, ["--kind", "npz", "--generalist", "openai"])
    assert result.exit_code == 0, result.output
    assert seen == [("npz", GeneralistOptions(kind="openai"))]


def test_a_command_redeclaring_a_generalist_flag_is_refused_when_built() -> None:
    probe = typer.Typer()

    @probe.command(cls=GeneralistCommand)
    def run(device: str = typer.Option("cpu", "--device")) -> None:
        raise AssertionError("never runs")

    with pytest.raises(TypeError, match=r"redeclares generalist flags: \['--device'\]"):
        typer.main.get_command(probe)

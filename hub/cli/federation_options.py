"""Options of federated runs, declared once: ``gsco-hub federation run`` and the federation demo share them.

Defaults stay with each command (the demo trains at 28 px, a hospital run at 64 px); both turn
the options into a :class:`RunSettings` with :func:`run_settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hub.federation.settings import RunSettings, StrategyName

RoundsOption = Annotated[int, typer.Option("--rounds", min=1, help="Federated rounds.")]
BackboneOption = Annotated[str, typer.Option("--backbone", help="Backbone of the specialist.")]
ImageSizeOption = Annotated[int, typer.Option("--image-size", help="Model input size in pixels.")]
StrategyOption = Annotated[StrategyName, typer.Option("--strategy", help="fedavg or fedprox.")]
SuperLinkOption = Annotated[str, typer.Option("--superlink", help="HOST:PORT of the SuperLink.")]
InsecureOption = Annotated[
    bool, typer.Option("--insecure", help="Plain HTTP to the SuperLink (loopback tests only).")
]
CaOption = Annotated[
    Path | None,
    typer.Option("--root-certificates", help="CA certificate (default: HOME/federation/certs/ca.pem)."),
]


def run_settings(
    task: str, backbone: str, image_size: int, rounds: int, strategy: StrategyName, **more: Any
) -> RunSettings:
    """The settings of a run from the shared options (``--rounds`` sets ``num_rounds``) and ``more``."""
    return RunSettings(
        task=task, backbone=backbone, image_size=image_size, num_rounds=rounds, strategy=strategy, **more
    )

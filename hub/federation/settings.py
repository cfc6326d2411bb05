"""The settings of one federated run: validated once, sent to the ServerApp as Flower run config.

``gsco-hub federation run`` builds a :class:`RunSettings` from its flags, writes it as a TOML
file of run-config overrides (``flwr run --run-config FILE``), and the ServerApp parses the
resulting run config back with :meth:`RunSettings.from_run_config`. Every key must exist in the
app's ``pyproject.toml`` (Flower only overrides declared keys); a test checks the two agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gsco_common.errors import ConfigError
from gsco_common.ids import TASK_ID_PATTERN
from specialist.training.schedule import warmup_cosine_factor

StrategyName = Literal["fedavg", "fedprox"]
LrSchedule = Literal["cosine", "constant"]


class RunSettings(BaseModel):
    """Everything the ServerApp needs; field ``image_size`` is run-config key ``image-size``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str = Field(pattern=TASK_ID_PATTERN)
    backbone: str = Field(default="resnet18", min_length=1)
    image_size: int = Field(default=64, ge=16, le=1024)
    num_rounds: int = Field(default=3, ge=1, le=1000)
    strategy: StrategyName = "fedavg"
    proximal_mu: float = Field(default=0.01, ge=0.0)
    min_sites: int = Field(default=2, ge=1)
    local_epochs: int = Field(default=1, ge=1, le=100)
    lr: float = Field(default=1e-3, gt=0.0, le=1.0)
    lr_schedule: LrSchedule = "cosine"
    min_lr_ratio: float = Field(default=0.05, ge=0.0, le=1.0)
    batch_size: int = Field(default=32, ge=2, le=4096)
    seed: int = Field(default=0, ge=0)
    min_count: int = Field(default=10, ge=1)
    round_timeout: float = Field(default=1800.0, gt=0.0)
    wait_sites_timeout: float = Field(default=120.0, gt=0.0)
    dp_noise_multiplier: float = Field(default=0.0, ge=0.0)
    dp_clipping_norm: float = Field(default=0.0, ge=0.0)
    dp_delta: float = Field(default=1e-5, gt=0.0, lt=1.0)
    dp_model: bool = False
    compress_updates: bool = True
    out_dir: str = ""

    @model_validator(mode="after")
    def _dp_complete(self) -> RunSettings:
        if (self.dp_noise_multiplier > 0) != (self.dp_clipping_norm > 0):
            raise ValueError("differential privacy needs both dp-noise-multiplier and dp-clipping-norm > 0")
        return self

    def round_lr(self, round_number: int) -> float:
        """The sites' learning rate in round ``round_number`` (1-based).

        The hub owns the schedule across rounds (each round's local training runs at a constant
        rate): ``cosine`` decays from ``lr`` in round 1 towards ``min_lr_ratio * lr``, so the last
        rounds make small, low-noise steps around the consensus model.
        """
        if self.lr_schedule == "constant":
            return self.lr
        factor = warmup_cosine_factor(round_number - 1, self.num_rounds, 0, self.min_lr_ratio)
        return self.lr * factor

    @property
    def dp_enabled(self) -> bool:
        return self.dp_noise_multiplier > 0

    @property
    def output(self) -> Path:
        if not self.out_dir:
            raise ConfigError(
                "out-dir is not set in the run config", hint="submit runs with `gsco-hub federation run`"
            )
        return Path(self.out_dir)

    def to_run_config(self) -> dict[str, object]:
        return {name.replace("_", "-"): value for name, value in self.model_dump().items()}

    def write_run_config(self, path: Path) -> Path:
        """The TOML file passed to ``flwr run --run-config``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tomli_w.dumps(self.to_run_config()), encoding="utf-8")
        return path

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, object]) -> RunSettings:
        raw = {key.replace("-", "_"): value for key, value in run_config.items()}
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = "-".join(str(part) for part in first["loc"]).replace("_", "-") or "(run config)"
            raise ConfigError(f"run config {key}: {first['msg']}") from None

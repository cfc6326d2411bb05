"""The approval policy file: defaults in ``default.yaml``, overridable per call with ``--policy``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gsco_common.errors import ConfigError

CheckName = Literal[
    "site_signature",
    "site_key_active",
    "card_complete",
    "onnx_checker",
    "onnxruntime_load",
    "anonymization",
    "metric_floor",
    "privacy",
]
MetricName = Literal["accuracy", "balanced_accuracy", "macro_f1", "auc"]


# Checks a policy may never switch off: without them an approval would not prove who made the model.
MANDATORY_CHECKS: tuple[CheckName, ...] = ("site_signature", "site_key_active")


class PrivacyLimits(BaseModel):
    """The ``privacy`` check's limits; a limit left null is not checked.

    ``max_epsilon`` holds at ``delta``: a card whose δ is larger than ``delta`` fails (its ε at
    the policy's δ would be larger still). A model trained without DP fails ``max_epsilon`` only
    when ``dp_required`` is set.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_mia_auc: float | None = Field(default=None, ge=0.5, le=1.0)
    max_epsilon: float | None = Field(default=None, gt=0.0)
    delta: float | None = Field(default=None, gt=0.0, lt=1.0)
    dp_required: bool = False

    @model_validator(mode="after")
    def _epsilon_needs_delta(self) -> PrivacyLimits:
        if self.max_epsilon is not None and self.delta is None:
            raise ValueError("privacy.max_epsilon needs privacy.delta (an epsilon means nothing without it)")
        return self


class Policy(BaseModel):
    """A resolved approval policy; it may tighten the checks, never drop the signature checks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checks: dict[CheckName, bool]
    metric_floor: dict[MetricName, float] = Field(default_factory=dict)
    privacy: PrivacyLimits = Field(default_factory=PrivacyLimits)
    deny_list: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _signatures_stay_on(self) -> Policy:
        off = [name for name in MANDATORY_CHECKS if not self.checks.get(name, True)]
        if off:
            raise ValueError(f"{off[0]} cannot be switched off: approvals always check the site signature")
        return self

    def enabled(self, check: CheckName) -> bool:
        return self.checks.get(check, True)


def _default_raw() -> dict[str, Any]:
    text = resources.files("registry.policy").joinpath("default.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _problems(exc: ValidationError, source: str) -> str:
    keys = [
        ".".join(str(p) for p in err["loc"]) + f": {err['msg']}"
        if err["loc"]
        else err["msg"].removeprefix("Value error, ")
        for err in exc.errors()
    ]
    return f"{source} is invalid: " + "; ".join(keys)


def _shipped(path: Path) -> Path:
    """``path``, or the policy of that file name shipped with the registry (``strict.yaml``)."""
    if path.exists() or path.parent != Path("."):
        return path
    shipped = resources.files("registry.policy").joinpath(path.name)
    return Path(str(shipped)) if shipped.is_file() and path.suffix == ".yaml" else path


def load_policy(path: Path | None = None) -> Policy:
    """The default policy, with the keys of ``path`` (if given) laid over it.

    A bare file name that does not exist in the working folder names a shipped policy
    (``--policy strict.yaml``).
    """
    raw = _default_raw()
    source = "the default policy"
    if path is not None:
        path = _shipped(path)
        source = f"policy file {path.name}"
        try:
            override = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError:
            raise ConfigError(f"cannot read {source}", hint="check the --policy path") from None
        except (yaml.YAMLError, UnicodeDecodeError):
            raise ConfigError(f"{source} is not valid YAML (or not UTF-8 text)") from None
        if not isinstance(override, dict):
            raise ConfigError(f"{source} must be a mapping of keys to values")
        unknown = sorted(str(key) for key in set(override) - set(raw))  # YAML keys may be any scalar
        if unknown:
            raise ConfigError(
                f"{source}: unknown key {unknown[0]}", hint=f"known keys: {', '.join(sorted(raw))}"
            )
        for section in ("checks", "privacy"):
            if isinstance(override.get(section), dict):
                override[section] = {**raw[section], **override[section]}
        raw = {**raw, **override}
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, source)) from None

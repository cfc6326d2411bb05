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
]
MetricName = Literal["accuracy", "balanced_accuracy", "macro_f1", "auc"]


# Checks a policy may never switch off: without them an approval would not prove who made the model.
MANDATORY_CHECKS: tuple[CheckName, ...] = ("site_signature", "site_key_active")


class Policy(BaseModel):
    """A resolved approval policy; it may tighten the checks, never drop the signature checks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checks: dict[CheckName, bool]
    metric_floor: dict[MetricName, float] = Field(default_factory=dict)
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


def load_policy(path: Path | None = None) -> Policy:
    """The default policy, with the keys of ``path`` (if given) laid over it."""
    raw = _default_raw()
    source = "the default policy"
    if path is not None:
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
        if isinstance(override.get("checks"), dict):
            override["checks"] = {**raw["checks"], **override["checks"]}
        raw = {**raw, **override}
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, source)) from None

"""A study file (YAML): task, data sets, sites and their shards, case library, evaluation split.

Validated with pydantic when loaded; an error names the key (``sites.1.shard.range: ...``).
Relative data paths are read relative to the study file's folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gsco_common.errors import ConfigError, GscoError
from gsco_common.ids import TASK_ID_PATTERN
from specialist.task import TaskConfig
from specialist.training.config import TrainingConfig

SplitName = Literal["train", "val", "test"]
_SITE_NAME = r"^[a-z0-9][a-z0-9-]{0,39}$"
_NESTED_KEY = re.compile(r"^[a-z_][a-z0-9_.]*: ")
# a site's training seed in repeat r is its own seed + REPEAT_SEED_STRIDE * r
REPEAT_SEED_STRIDE = 100


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskSpec(_Strict):
    """The task as ``gsco-registry tasks create`` and ``site-agent init`` take it (their checks too)."""

    id: str = Field(pattern=TASK_ID_PATTERN)
    labels: tuple[str, ...] = Field(min_length=2)
    modality: str = Field(min_length=1)

    @field_validator("labels")
    @classmethod
    def _passed_as_is(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        if any("," in label or label != label.strip() for label in labels):
            raise ValueError(
                "label names take no commas and no surrounding spaces (the CLIs take them comma-separated)"
            )
        return labels

    @model_validator(mode="after")
    def _a_site_task(self) -> TaskSpec:
        try:
            TaskConfig(id=self.id, labels=list(self.labels), modality=self.modality)
        except ValidationError as exc:
            raise ValueError(_problem(exc.errors()[0])) from None
        return self


class ShardSpec(_Strict):
    """Which images of one split of a data set: a seeded shuffle, then the part ``range`` of it.

    ``range`` is a half-open interval of fractions of the shuffled split, so shards with
    non-overlapping ranges of the same split are disjoint. ``label_skew`` then subsamples the
    part so that the named labels make up the given shares (``{pneumonia: 0.95}``);
    ``max_images`` keeps at most that many (stratified).
    """

    dataset: str
    split: SplitName = "train"
    range: tuple[float, float] = (0.0, 1.0)
    label_skew: dict[str, float] = Field(default_factory=dict)
    max_images: int | None = Field(default=None, ge=2)

    @field_validator("range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        start, stop = value
        if not 0.0 <= start < stop <= 1.0:
            raise ValueError("must be [start, stop) with 0 <= start < stop <= 1")
        return value

    @field_validator("label_skew")
    @classmethod
    def _shares(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not 0.0 < share < 1.0 for share in value.values()) or sum(value.values()) >= 1.0 + 1e-9:
            raise ValueError("shares must lie in (0, 1) and sum to at most 1")
        return value


class ShiftSpec(_Strict):
    """A simulated acquisition shift applied to evaluation images (identity by default)."""

    gamma: float = Field(default=1.0, gt=0.0)
    contrast: float = Field(default=1.0, gt=0.0)
    blur_sigma: float = Field(default=0.0, ge=0.0, le=5.0)
    noise_std: float = Field(default=0.0, ge=0.0, le=0.5)
    downsample: int = Field(default=1, ge=1, le=8)

    @property
    def is_identity(self) -> bool:
        return self == ShiftSpec()


class SiteSpec(_Strict):
    """One site of a study.

    ``backbone`` and the ``training`` overrides are checked as ``site-agent train`` checks them,
    so a typo in the last site stops the study before the first one trains.
    """

    name: str = Field(pattern=_SITE_NAME)
    backbone: str = Field(min_length=1)
    image_size: int = Field(ge=16, le=1024)
    epochs: int = Field(ge=1, le=500)
    seed: int = Field(default=0, ge=0)
    shard: ShardSpec
    training: dict[str, Any] = Field(default_factory=dict)

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, backbone: str) -> str:
        from specialist.models import get_spec  # torch and timm load only when a study is read

        try:
            get_spec(backbone)
        except GscoError as exc:
            raise ValueError(exc.message) from None
        return backbone

    @field_validator("training")
    @classmethod
    def _training_overrides(cls, training: dict[str, Any]) -> dict[str, Any]:
        try:
            TrainingConfig.model_validate(training)
        except ValidationError as exc:
            raise ValueError(_problem(exc.errors()[0])) from None
        return training

    def check_training(self, modality: str) -> None:
        """:class:`ConfigError` when ``site-agent train`` would refuse this site's recipe, flips or TTA."""
        from specialist.training.effective import effective_training  # loads torch: only when checked

        effective_training(self.backbone, TrainingConfig.model_validate(self.training), modality)


class LibrarySpec(_Strict):
    """The hub's case library: a shard disjoint from every site's, or one site's own training shard."""

    shard: ShardSpec | None = None
    site: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> LibrarySpec:
        if (self.shard is None) == (self.site is None):
            raise ValueError(
                "give exactly one of `shard` (disjoint data) or `site` (a site's own training shard)"
            )
        return self


class EvaluationSpec(_Strict):
    shard: ShardSpec
    shift: ShiftSpec = Field(default_factory=ShiftSpec)


class _Described(_Strict):
    """A study or variant: its name, heading and what its figures are and are not evidence for."""

    name: str = Field(pattern=_SITE_NAME)
    title: str = Field(min_length=1)
    description: str = ""
    evidence_for: str = ""
    not_evidence_for: str = ""


class VariantSpec(_Described):
    """The same trained sites, another case library and/or evaluation set (no retraining)."""

    library: LibrarySpec | None = None
    evaluation: EvaluationSpec | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> VariantSpec:
        if self.library is None and self.evaluation is None:
            raise ValueError("a variant changes `library`, `evaluation` or both")
        return self


class StudySpec(_Described):
    """A whole study; ``repeats`` runs it that many times with other seeds (see :meth:`repeat`)."""

    task: TaskSpec
    datasets: dict[str, Path] = Field(min_length=1)
    seed: int = Field(default=0, ge=0)
    threads: int = Field(default=1, ge=1, le=64)
    repeats: int = Field(default=1, ge=1, le=20)
    approval_policy: Path | None = None
    sites: tuple[SiteSpec, ...] = Field(min_length=1)
    library: LibrarySpec
    evaluation: EvaluationSpec
    variants: tuple[VariantSpec, ...] = ()
    compare_with: Path | None = None
    reference_site: str | None = None
    """A site whose specialist every method is compared with (e.g. the baseline of a recipe study),
    named before the run; without it, the best specialist on the evaluation set."""

    @model_validator(mode="after")
    def _sites_train(self) -> StudySpec:
        for index, site in enumerate(self.sites):
            try:
                site.check_training(self.task.modality)
            except GscoError as exc:
                raise ValueError(f"sites.{index}.{exc.message}") from None
        return self

    @model_validator(mode="after")
    def _references(self) -> StudySpec:
        names = [site.name for site in self.sites]
        if len(set(names)) != len(names):
            raise ValueError("sites: site names must be unique")
        if self.reference_site is not None:
            if self.reference_site not in names:
                raise ValueError(f"reference_site: {self.reference_site!r} is not one of the sites")
            if self.compare_with is not None:
                raise ValueError(
                    "reference_site: a study with a named reference compares with no other study "
                    "(compare_with counts drops against the best specialist)"
                )
        if len({v.name for v in self.variants}) != len(self.variants):
            raise ValueError("variants: variant names must be unique")
        shards: list[tuple[str, ShardSpec | None]] = [
            (f"sites.{i}.shard", s.shard) for i, s in enumerate(self.sites)
        ]
        arms = [("", self.library, self.evaluation)]
        arms += [(f"variants.{i}.", v.library, v.evaluation) for i, v in enumerate(self.variants)]
        for prefix, library, evaluation in arms:
            if library is not None and library.site is not None and library.site not in names:
                raise ValueError(f"{prefix}library.site: {library.site!r} is not one of the sites")
            shards.append((f"{prefix}library.shard", library.shard if library else None))
            shards.append((f"{prefix}evaluation.shard", evaluation.shard if evaluation else None))
        for key, shard in shards:
            if shard is None:
                continue
            if shard.dataset not in self.datasets:
                raise ValueError(f"{key}.dataset: {shard.dataset!r} is not one of `datasets`")
            unknown = set(shard.label_skew) - set(self.task.labels)
            if unknown:
                raise ValueError(f"{key}.label_skew: {sorted(unknown)} are not labels of the task")
        return self

    def repeat(self, index: int) -> StudySpec:
        """The study as repeat ``index`` runs it (0: as written).

        Repeat ``r`` cuts every shard from the shuffle ``seed + r`` and trains each site with
        ``seed + REPEAT_SEED_STRIDE * r``; everything else is unchanged.
        """
        if not 0 <= index < self.repeats:
            raise ValueError(f"repeat {index} of a study with {self.repeats} repeat(s)")
        sites = tuple(s.model_copy(update={"seed": s.seed + REPEAT_SEED_STRIDE * index}) for s in self.sites)
        return self.model_copy(update={"seed": self.seed + index, "sites": sites})


def _problem(error: Any) -> str:
    """``key: message``; checks across keys already name the key in their message.

    A check that validates a nested model names the key inside it (``labels: ...``): it is
    joined to the location as one dotted key (``task.labels: ...``).
    """
    message = error["msg"].removeprefix("Value error, ")
    location = ".".join(str(part) for part in error["loc"])
    if not location:
        return message
    return f"{location}.{message}" if _NESTED_KEY.match(message) else f"{location}: {message}"


def parse_study(data: Any, base_dir: Path) -> StudySpec:
    """Validate a loaded mapping; relative data paths resolve against ``base_dir``."""
    if not isinstance(data, dict):
        raise ConfigError("the study file must be a YAML mapping")
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problem(exc.errors()[0]), hint="fix this key in the study file") from None
    resolve = lambda path: path if path.is_absolute() else (base_dir / path).resolve()  # noqa: E731
    return spec.model_copy(
        update={
            "datasets": {name: resolve(path) for name, path in spec.datasets.items()},
            "compare_with": resolve(spec.compare_with) if spec.compare_with else None,
            "approval_policy": resolve(spec.approval_policy) if spec.approval_policy else None,
        }
    )


def read_study(path: Path) -> StudySpec:
    """Read and validate a study file, without looking for the files it names."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the study file {path.name}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name} is not UTF-8 text", hint="save the study file as UTF-8") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name} is not valid YAML: {exc}") from None
    return parse_study(data, path.resolve().parent)


def load_study(path: Path) -> StudySpec:
    """Read and validate a study file, and check that the files it names are there."""
    spec = read_study(path)
    if spec.approval_policy is not None and not spec.approval_policy.is_file():
        raise ConfigError(f"approval_policy: no file at {spec.approval_policy}")
    for name, dataset in spec.datasets.items():
        if not dataset.is_file():
            raise ConfigError(
                f"datasets.{name}: no file at {dataset}", hint="check the path (relative to the study file)"
            )
    if spec.compare_with is not None and spec.compare_with.exists() and not spec.compare_with.is_file():
        raise ConfigError(
            f"compare_with: {spec.compare_with} is not a file", hint="name that study's study.json"
        )
    return spec

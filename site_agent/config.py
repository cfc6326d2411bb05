"""``site.yaml``: the one configuration file of a site, validated on every load.

Precedence, highest first: command-line flag > environment variable > ``site.yaml`` > default.
Environment overrides (:data:`ENV_OVERRIDES`) are applied here; flags are applied by the commands
on top of the loaded :class:`SiteConfig`. A validation error names the offending key (``training.lr``)
or environment variable, never a value read from site data.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from gsco_common.errors import ConfigError
from registry.config import RegistryChoice
from site_agent.data.config import DataConfig
from specialist.task import StrictModel, TaskConfig
from specialist.training.config import TrainingConfig

SITE_FILE = "site.yaml"
KEYS_DIR = "keys"
PRIVATE_KEY_FILE = "site.key"
PUBLIC_KEY_FILE = "site.pub"
RUNS_DIR = "runs"

# Environment variable -> dotted key of site.yaml it overrides.
ENV_OVERRIDES: dict[str, str] = {
    "GSCO_HOME": "registry.home",
    "GSCO_TRACKING_URI": "registry.tracking_uri",
    "GSCO_REGISTRY_DB": "registry.db_uri",
    "GSCO_WEIGHTS_DIR": "training.weights_dir",
    "GSCO_DEVICE": "training.device",
}

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$"


class ExportConfig(StrictModel):
    """Export settings: extra strings that must never appear in a published bundle."""

    deny_list: list[str] = Field(default_factory=list)


class FederationConfig(StrictModel):
    """Flower SuperNode settings of this site."""

    superlink: str | None = None
    insecure: bool = False


class SiteConfig(StrictModel):
    """The whole of ``site.yaml``."""

    name: str = Field(pattern=_NAME_PATTERN)
    task: TaskConfig
    data: DataConfig | None = None
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    registry: RegistryChoice = Field(default_factory=RegistryChoice)
    export: ExportConfig = Field(default_factory=ExportConfig)
    federation: FederationConfig = Field(default_factory=FederationConfig)


def site_file(site_dir: Path) -> Path:
    return site_dir / SITE_FILE


def site_key_paths(site_dir: Path) -> tuple[Path, Path]:
    """``(private, public)`` key paths of a site: ``keys/site.key`` and ``keys/site.pub``."""
    keys = site_dir / KEYS_DIR
    return keys / PRIVATE_KEY_FILE, keys / PUBLIC_KEY_FILE


def runs_dir(site_dir: Path) -> Path:
    return site_dir / RUNS_DIR


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem, each naming the dotted key (``training.lr: ...``)."""
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{key}: {error['msg']}")
    return f"{source} is invalid: " + "; ".join(problems)


def validate_site_config(raw: Any, source: str = SITE_FILE) -> SiteConfig:
    """Validate a parsed mapping, raising :class:`ConfigError` that names each bad key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping of keys to values", hint="see docs/site-agent.md")
    try:
        return SiteConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source), hint="fix the named key(s)") from None


def _apply_env(raw: dict[str, Any], environ: dict[str, str]) -> list[str]:
    applied = []
    for variable, dotted in ENV_OVERRIDES.items():
        value = environ.get(variable)
        if value is None or value == "":
            continue
        *parents, leaf = dotted.split(".")
        node = raw
        for part in parents:
            child = node.get(part)
            if child is None:
                child = {}
                node[part] = child
            if not isinstance(child, dict):
                raise ConfigError(f"{SITE_FILE}: {part} must be a mapping")
            node = child
        node[leaf] = value
        applied.append(variable)
    return applied


def load_site_config(site_dir: Path, environ: dict[str, str] | None = None) -> SiteConfig:
    """Read, apply environment overrides to and validate ``SITE_DIR/site.yaml``."""
    path = site_file(site_dir)
    if not path.is_file():
        raise ConfigError(
            f"no {SITE_FILE} in the site folder {site_dir}",
            hint="`site-agent init SITE_DIR ...` makes a site; a run's site is the folder that holds its "
            "runs/ (train and join take it as --site)",
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{SITE_FILE} cannot be read ({type(exc).__name__})",
            hint="check that it is a UTF-8 text file readable by the user running site-agent",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{SITE_FILE} is not valid YAML{where}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{SITE_FILE} must be a mapping of keys to values")
    env = dict(os.environ) if environ is None else environ
    applied = _apply_env(raw, env)
    source = SITE_FILE + (f" (with {', '.join(applied)} from the environment)" if applied else "")
    config = validate_site_config(raw, source)
    if config.data is not None and not config.data.path.is_absolute():
        config.data = config.data.model_copy(update={"path": (site_dir / config.data.path).resolve()})
    return config


def _yaml_value(value: Any) -> str:
    """A YAML flow scalar / list for the template (JSON is valid YAML and quotes safely)."""
    return json.dumps(value, ensure_ascii=False)


SITE_TEMPLATE = """\
# site.yaml: configuration of one GSCo site (read by every `site-agent` command).
# Precedence: command-line flag > environment variable > this file > built-in default.
# Environment overrides: GSCO_HOME (registry.home), GSCO_TRACKING_URI (registry.tracking_uri),
# GSCO_WEIGHTS_DIR (training.weights_dir), GSCO_DEVICE (training.device).
# Reference: docs/site-agent.md. The file is validated on every load; errors name the key.

# Name of this site as shown to the central team (letters, digits, space, . _ -).
name: {name}

task:
  # Stable task id shared by every site training for the same task (e.g. pneumonia-cxr).
  id: {task_id}
  # Ordered label names; a model's output i means labels[i]. Data labels map onto these.
  labels: {labels}
  # Imaging modality in plain words; used in the model card and the generalist's prompt.
  modality: {modality}
  # What the model is meant for, what it must not be used for, and what is known to limit it.
  intended_use: ""
  out_of_scope: []
  limitations: []

# Site data. `site-agent train --data PATH` overrides it. kind: auto|npz|imagefolder|csv|dicom.
# data:
#   path: /data/cxr
#   kind: auto
#   val_fraction: 0.15
#   test_fraction: 0.15
#   max_unreadable_fraction: 0.05
data: null

training:
  backbones: ["resnet18"]   # one run per backbone; any of `site-agent backbones` or a timm name
  image_size: 224           # model input size in pixels
  resize: pad               # pad (keep aspect ratio: centred black square, then resize) | stretch
  tta: none                 # none | hflip (mean with the mirror; never for chest X-ray: heart side)
  epochs: 20
  batch_size: 32
  lr: 0.001                 # AdamW peak learning rate
  weight_decay: 0.05
  warmup_fraction: 0.05     # linear warm-up over this fraction of all steps, then cosine decay
  min_lr_ratio: 0.01        # the cosine ends at lr * min_lr_ratio
  class_weights: balanced   # loss weight per class ~ count**-p: balanced (p=1) | sqrt (p=0.5) | none
  label_smoothing: 0.0
  recipe: auto              # per-backbone changes: auto | default | efficientnet | vgg (docs/site-agent.md)
  early_stopping:
    monitor: balanced_accuracy   # balanced_accuracy | macro_f1 | accuracy | auc | loss
    patience: 5                  # epochs without improvement before stopping
    min_delta: 0.0
  augmentation:             # training batches only; flips follow task.modality (laterality matters)
    enabled: true
    probability: 0.5        # share of training images augmented; the rest stay untouched
    rotation_deg: 10.0
    translate: 0.05         # fraction of the image size
    scale: [0.9, 1.1]
    brightness: 0.1
    contrast: 0.1
    hflip: auto             # auto: on for dermoscopy/microscopy only; never for chest X-ray (refused)
    vflip: auto             # auto: dermoscopy/microscopy only; refused for chest X-ray and ultrasound
  dp:                       # DP-SGD (Opacus): sample-level differential privacy for the training images
    enabled: false
    epsilon: 8.0            # privacy budget; training stops before an extra step would exceed it
    delta: 1.0e-5           # keep below 1 / number of training images
    max_grad_norm: 1.0      # per-image gradient clipping norm
    accountant: rdp         # rdp | prv (Opacus accountants)
  seed: 0
  device: auto              # auto | cpu | cuda | cuda:N (auto = CUDA when present, with AMP)
  amp: true                 # mixed precision on CUDA
  num_threads: null         # CPU threads for torch; null = torch's default
  cache_mb: 2048            # keep preprocessed images in memory up to this size
  weights_dir: null         # local pretrained weights: one file per backbone (resnet18.safetensors)
  weights_sha256: null      # the weights file's published SHA-256; another file is refused
  weights_origin: ""        # where the weights file came from (copied into the model card)

registry:
  home: null                # embedded registry home; null = GSCO_HOME or ~/.gsco
  tracking_uri: null        # production MLflow server, e.g. https://registry.example.org
  db_uri: null              # with a server: the registry tables' database (GSCO_REGISTRY_DB)

export:
  deny_list: []             # extra strings that must never appear in a published bundle

federation:
  superlink: null           # host:port of the hub's Flower SuperLink
  insecure: false           # plain-text gRPC: loopback tests and the one-machine demo only
"""


def render_site_template(name: str, task_id: str, labels: list[str], modality: str) -> str:
    """The commented ``site.yaml`` written by ``site-agent init``; validated before it is returned."""
    text = SITE_TEMPLATE.format(
        name=_yaml_value(name),
        task_id=_yaml_value(task_id),
        labels=_yaml_value(labels),
        modality=_yaml_value(modality),
    )
    validate_site_config(yaml.safe_load(text), "the new site.yaml")
    return text


def data_override(base: DataConfig | None, path: Path) -> DataConfig:
    """The data config for ``--data PATH``: the path (and reader) replaced, the site's split settings kept."""
    kept = {}
    if base is not None:
        kept = base.model_dump(
            include={"val_fraction", "test_fraction", "max_unreadable_fraction", "label_aliases"}
        )
    try:
        return DataConfig.model_validate({**kept, "path": path.expanduser().resolve()})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "--data")) from None

"""``site-agent train``: one run per backbone in SITE_DIR/runs/<run-id>/, or ``--resume`` one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.logging import RichHandler

from gsco_common.cli import console, err_console, handle_errors, print_json
from gsco_common.errors import ConfigError
from site_agent.config import data_override, load_site_config
from specialist.training.config import MonitorName, TrainingConfig

if TYPE_CHECKING:
    from site_agent.training.trainer import RunResult

# flag -> (path inside `training`) for the error message and the merge
_FLAG_KEYS: dict[str, tuple[str, ...]] = {
    "--image-size": ("image_size",),
    "--epochs": ("epochs",),
    "--batch-size": ("batch_size",),
    "--lr": ("lr",),
    "--weight-decay": ("weight_decay",),
    "--seed": ("seed",),
    "--device": ("device",),
    "--num-threads": ("num_threads",),
    "--weights-dir": ("weights_dir",),
    "--class-weights": ("class_weights",),
    "--monitor": ("early_stopping", "monitor"),
    "--patience": ("early_stopping", "patience"),
    "--augment": ("augmentation", "enabled"),
    "--hflip": ("augmentation", "hflip"),
    "--dp": ("dp", "enabled"),
    "--epsilon": ("dp", "epsilon"),
    "--delta": ("dp", "delta"),
    "--max-grad-norm": ("dp", "max_grad_norm"),
}


@contextmanager
def console_warnings() -> Iterator[None]:
    """Show site_agent warnings (e.g. random initialisation) on stderr while the command runs."""
    handler = RichHandler(console=err_console, show_time=False, show_path=False, level=logging.WARNING)
    logger = logging.getLogger("site_agent")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def resolve_training(base: TrainingConfig, flags: dict[str, Any]) -> TrainingConfig:
    """Apply the flags that were given (not None) over the site's training section."""
    merged = base.model_dump()
    for flag, value in flags.items():
        if value is None:
            continue
        *parents, leaf = _FLAG_KEYS[flag]
        node = merged
        for part in parents:
            node = node[part]
        node[leaf] = value
    try:
        return TrainingConfig.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = tuple(str(part) for part in error["loc"])
            flag = next((name for name, key in _FLAG_KEYS.items() if key == path), None)
            problems.append(f"{flag or 'training.' + '.'.join(path)}: {error['msg']}")
        raise ConfigError("invalid training option: " + "; ".join(problems)) from None


def _report(results: list[RunResult], json_output: bool) -> None:
    if json_output:
        print_json([result.summary() for result in results])
        return
    for result in results:
        val = result.val
        console.print(
            f"{result.run_dir}  best epoch {result.best_epoch}  val accuracy {val['accuracy']:.4f}  "
            f"balanced accuracy {val['balanced_accuracy']:.4f}  macro-F1 {val['macro_f1']:.4f}",
            highlight=False,
            soft_wrap=True,
        )


@handle_errors
def train(
    site: Path = typer.Option(
        Path("."), "--site", envvar="GSCO_SITE_DIR", help="Site folder (with site.yaml)."
    ),
    data: Path | None = typer.Option(None, "--data", help="Data path; overrides data.path of site.yaml."),
    backbone: str | None = typer.Option(None, "--backbone", help="Backbone name(s), comma-separated."),
    image_size: int | None = typer.Option(None, "--image-size", help="Input size in pixels."),
    epochs: int | None = typer.Option(None, "--epochs"),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    lr: float | None = typer.Option(None, "--lr", help="Peak learning rate (AdamW)."),
    weight_decay: float | None = typer.Option(None, "--weight-decay"),
    seed: int | None = typer.Option(
        None, "--seed", help="Seed of splits, initialisation, order, augmentation."
    ),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N."),
    num_threads: int | None = typer.Option(None, "--num-threads", help="CPU threads for torch."),
    weights_dir: Path | None = typer.Option(None, "--weights-dir", help="Local pretrained weights folder."),
    class_weights: str | None = typer.Option(
        None, "--class-weights", help="Loss weighting by class frequency: balanced, sqrt or none."
    ),
    monitor: str | None = typer.Option(
        None, "--monitor", help="Early-stopping metric: " + ", ".join(MonitorName.__args__)
    ),
    patience: int | None = typer.Option(
        None, "--patience", help="Epochs without improvement before stopping."
    ),
    augment: bool | None = typer.Option(None, "--augment/--no-augment", help="Training augmentation."),
    hflip: bool | None = typer.Option(
        None,
        "--hflip/--no-hflip",
        help="Random horizontal flips (default: as task.modality allows; never for chest X-rays).",
    ),
    dp: bool | None = typer.Option(
        None, "--dp/--no-dp", help="DP-SGD (Opacus): sample-level differential privacy."
    ),
    epsilon: float | None = typer.Option(None, "--epsilon", help="DP budget epsilon (with --dp)."),
    delta: float | None = typer.Option(None, "--delta", help="DP delta (with --dp)."),
    max_grad_norm: float | None = typer.Option(
        None, "--max-grad-norm", help="DP-SGD per-image gradient clipping norm."
    ),
    resume: Path | None = typer.Option(None, "--resume", help="Continue an interrupted run folder exactly."),
    json_output: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of {run_dir, backbone, best_epoch, val}.")
    ] = False,
) -> None:
    """Train a specialist per backbone on the site's data; print the run folders.

    Ctrl-C stops after the current step and leaves a checkpoint that --resume continues exactly.
    """
    # torch, timm and the data readers load here, not at import: `site-agent --help` stays fast.
    from site_agent.data.loader import load_site_data
    from site_agent.training.progress import RichProgress
    from site_agent.training.trainer import resume_run, train_run
    from specialist.models.registry import get_spec
    from specialist.training.device import describe_device, select_device

    flags = {
        "--image-size": image_size,
        "--epochs": epochs,
        "--batch-size": batch_size,
        "--lr": lr,
        "--weight-decay": weight_decay,
        "--seed": seed,
        "--device": device,
        "--num-threads": num_threads,
        "--weights-dir": weights_dir,
        "--class-weights": class_weights,
        "--monitor": monitor,
        "--patience": patience,
        "--augment": augment,
        "--hflip": hflip,
        "--dp": dp,
        "--epsilon": epsilon,
        "--delta": delta,
        "--max-grad-norm": max_grad_norm,
    }
    with console_warnings():
        if resume is not None:
            given = [
                flag
                for flag, value in {**flags, "--data": data, "--backbone": backbone}.items()
                if value is not None
            ]
            if given:
                raise ConfigError(
                    f"--resume continues a run with its saved configuration; drop {', '.join(given)}",
                    hint="start a new run to change the configuration",
                )
            results = [resume_run(resume, callbacks=[RichProgress(err_console, resume.name)])]
            _report(results, json_output)
            return
        site = site.resolve()
        config = load_site_config(site)
        training = resolve_training(config.training, flags)
        backbones = [name.strip() for name in backbone.split(",")] if backbone else training.backbones
        for name in backbones:
            get_spec(name)
        if data is not None:
            data_config = data_override(config.data, data)
        elif config.data is not None:
            data_config = config.data
        else:
            raise ConfigError("no training data: pass --data or set data.path in site.yaml")
        err_console.print(describe_device(select_device(training.device), training.amp), highlight=False)
        site_data = load_site_data(data_config, config.task.labels, training.seed)
        results = [
            train_run(
                site,
                config,
                data_config,
                name,
                training,
                site_data=site_data,
                callbacks=[RichProgress(err_console, name)],
            )
            for name in backbones
        ]
    _report(results, json_output)

"""Validation metrics and training time per backbone on the pneumonia and breast dev data.

Each backbone is trained from random initialisation (no pretrained weights on this machine) with
``site-agent``'s trainer and its defaults, apart from the input size, epochs and batch size given
here, on the MedMNIST dev files in ../shared/data (synthetic stand-ins, plainly labelled, when
they are absent). Numbers are on each file's validation split; the trainer carves its own test
split out of ``train`` (data defaults), so training uses 85 % of ``train``.

    .venv/bin/python bench/backbone_results.py                 # prints the tables
    .venv/bin/python bench/backbone_results.py --write-docs    # also updates docs/results.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_parser  # noqa: E402
from bench.docs_section import publish  # noqa: E402
from site_agent.config import SiteConfig  # noqa: E402
from site_agent.data.config import DataConfig  # noqa: E402
from site_agent.data.loader import load_site_data  # noqa: E402
from site_agent.data.synthetic import write_synthetic_npz  # noqa: E402
from site_agent.training.run_dir import RunInfo, load_run  # noqa: E402
from site_agent.training.trainer import train_run  # noqa: E402
from specialist.data import SiteData  # noqa: E402
from specialist.training.config import TrainingConfig  # noqa: E402

SECTION = "## Specialists per backbone (site-agent train)"
SHARED = ROOT.parent / "shared" / "data"
DATASETS = {
    "pneumonia": ("pneumoniamnist_dev.npz", ["normal", "pneumonia"], "paediatric chest X-ray"),
    "breast": ("breastmnist_dev.npz", ["malignant", "normal_or_benign"], "breast ultrasound"),
}


def dataset(name: str, scratch: Path) -> tuple[Path, str]:
    file_name, _, _ = DATASETS[name]
    if (SHARED / file_name).is_file():
        return SHARED / file_name, f"real ({file_name})"
    return write_synthetic_npz(scratch / f"{name}_synthetic.npz", n_per_class=300), "SYNTHETIC stand-in"


def parse_torch_args(parser: argparse.ArgumentParser, threads: int) -> argparse.Namespace:
    """Add ``--threads`` (torch's thread count, default ``threads``), parse, and apply it."""
    parser.add_argument("--threads", type=int, default=threads)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args


def train_site(
    task_id: str, labels: list[str], modality: str, path: Path
) -> tuple[SiteConfig, DataConfig, SiteData]:
    """A site named ``bench`` training ``task_id`` on the ``.npz`` at ``path``, and its data (seed 0)."""
    site = SiteConfig(name="bench", task={"id": task_id, "labels": labels, "modality": modality})
    data = DataConfig(path=path)
    return site, data, load_site_data(data, labels, seed=0)


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def row(run: RunInfo, wall: float) -> str:
    metrics = run.metrics
    val = run.val_metrics
    history = metrics["history"]
    speed = sum(record["images_per_s"] for record in history) / len(history)
    return (
        f"| {run.backbone} | {run.image_size} | {run.epochs_completed} | {run.best_epoch} "
        f"| {_f(val['accuracy'])} | {_f(val['balanced_accuracy'])} | {_f(val['macro_f1'])} "
        f"| {_f(val['auc'])} | {_f(val['ece'])} | {metrics['training_seconds']:.0f} | {wall:.0f} "
        f"| {speed:.0f} |"
    )


def quick_run(scratch: Path) -> list[str]:
    """Time the README's one-minute command end to end (process start included) in a fresh site.

    Run as given (torch's default threads) and with ``--num-threads 1``, which is faster when other
    jobs share the cores.
    """
    path, source = dataset("pneumonia", scratch)
    site_agent = Path(sys.executable).parent / "site-agent"
    site = scratch / "quick-site"
    env = {**os.environ, "GSCO_KEY_PASSPHRASE": os.environ.get("GSCO_KEY_PASSPHRASE", "bench-passphrase-123")}
    init = [str(site_agent), "init", str(site), "--name", "bench", "--task", "pneumonia"]
    init += ["--labels", "normal,pneumonia", "--modality", "paediatric chest X-ray"]
    subprocess.run(init, check=True, env=env, capture_output=True)
    options = ["--backbone", "resnet18", "--image-size", "28", "--epochs", "1"]
    lines = [f"### The one-minute run: pneumonia, {source}", ""]
    for extra in ([], ["--num-threads", "1"]):
        started = time.perf_counter()
        command = [str(site_agent), "train", "--data", str(path), *options, *extra, "--json"]
        done = subprocess.run(command, check=True, env=env, cwd=site, capture_output=True)
        wall = time.perf_counter() - started
        (summary,) = json.loads(done.stdout)
        val = summary["val"]
        shown = f"site-agent train --data {path.name} " + " ".join([*options, *extra])
        lines += [
            f"- `{shown}` in a fresh site: **{wall:.0f} s** wall time (process start, data loading, "
            f"training, validation, test split, figures; 5-minute load average {os.getloadavg()[1]:.1f}), "
            f"validation accuracy **{val['accuracy']:.3f}** (balanced {val['balanced_accuracy']:.3f}, "
            f"macro-F1 {val['macro_f1']:.3f}, AUC {_f(val['auc'])}).",
        ]
    return [*lines, ""]


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--datasets", default="pneumonia,breast")
    parser.add_argument(
        "--backbones",
        default="resnet18,densenet121,efficientnet_b0,vit_b16:1",
        help="comma-separated; NAME:EPOCHS overrides --epochs for one backbone",
    )
    parser.add_argument(
        "--image-size", type=int, default=32, help="requested input size (backbones may round)"
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--skip-quick-run", action="store_true", help="skip timing the one-minute command")
    args = parse_torch_args(parser, threads=2)

    sections = []
    with tempfile.TemporaryDirectory(prefix="gsco-backbones-") as tmp:
        scratch = Path(tmp)
        if not args.skip_quick_run:
            sections += quick_run(scratch)
            print("\n".join(sections), flush=True)
        for name in args.datasets.split(","):
            path, source = dataset(name, scratch)
            _, labels, modality = DATASETS[name]
            site, data, site_data = train_site(name, labels, modality, path)
            sizes = {split: len(images) for split, images in site_data.splits.items()}
            rows = [
                "| backbone | input px | epochs | best epoch | val accuracy | balanced acc. | macro-F1 | AUC "
                "| ECE | train s | wall s | images/s |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for entry in args.backbones.split(","):
                backbone, _, epochs = entry.partition(":")
                training = TrainingConfig(
                    image_size=args.image_size,
                    epochs=int(epochs or args.epochs),
                    batch_size=args.batch_size,
                    device="cpu",
                )
                started = time.perf_counter()
                result = train_run(scratch / name, site, data, backbone, training, site_data=site_data)
                wall = time.perf_counter() - started
                rows.append(row(load_run(result.run_dir), wall))
                print(rows[-1], flush=True)
            sections += [
                f"### {name}: {modality}, {source}",
                "",
                f"train / val / test images: {sizes['train']} / {sizes['val']} / {sizes['test']}.",
                "",
                *rows,
                "",
            ]
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, {args.threads} threads, torch {torch.__version__}"
    )
    lines = [
        SECTION,
        "",
        f"`bench/backbone_results.py` ({machine}): random initialisation, {args.epochs} epochs (unless "
        f"the table says otherwise), batch "
        f"{args.batch_size}, requested input {args.image_size} px, otherwise the `site.yaml` defaults "
        "(AdamW, warm-up + cosine, balanced class weights, light augmentation, early stopping on "
        "balanced accuracy). Metrics of the best epoch on the validation split; `train s` is time in "
        "training steps, `wall s` includes validation, checkpoints and figures.",
        "",
        "- efficientnet_b0 stands in for the paper's efficientnet_b4: b4 is too slow to train on 2 CPU "
        "cores. Its images/s here are low because two torch threads share two busy cores, not because "
        "of the loop: see benchmarks.md, 'EfficientNet training speed'.",
        "- vit_b16 (ViT-B/16, 86 M parameters) at 32 px is 2x2 patches; one epoch from scratch. ViTs "
        "need pretrained weights or far more data; the row shows that the backbone trains end to end.",
        f"- The machine was shared with other jobs (5-minute load average {os.getloadavg()[1]:.1f} on "
        f"{os.cpu_count()} CPUs at the end): times and images/s are pessimistic and noisy.",
        "",
        *sections,
    ]
    publish(lines, "results.md", "Results", write=args.write_docs)


if __name__ == "__main__":
    main()

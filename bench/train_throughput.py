"""Training throughput: site-agent's loop vs a minimal hand-written PyTorch loop, side by side.

Both train the same backbone from the same initial weights on the same preprocessed images with
the same batch size, optimizer (AdamW, multi-tensor) and thread count, in one process, with the
repetitions interleaved (hand, site-agent, site-agent, hand, ...) so that machine load affects both
alike. site-agent's loop is ``specialist.training.loop.train_local`` (the loop ``site-agent train``
and the federation client run), with augmentation off, as the hand loop has none; a second
site-agent row shows the cost of the default augmentation. Target: ratio >= 0.90.

``--backbones`` measures several backbones (random initialisation, no downloads), each at the
smallest input it accepts that is at least ``--image-size`` (ViTs: two patches per side).

    .venv/bin/python bench/train_throughput.py                 # prints the table
    .venv/bin/python bench/train_throughput.py --backbones resnet18,vgg16 --threads 1
    .venv/bin/python bench/train_throughput.py --write-docs    # also updates docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_parser  # noqa: E402
from bench.docs_section import publish  # noqa: E402
from site_agent.data.config import DataConfig  # noqa: E402
from site_agent.data.loader import load_site_data  # noqa: E402
from site_agent.data.synthetic import write_synthetic_npz  # noqa: E402
from specialist.data import LabelledImages  # noqa: E402
from specialist.inputs import PreparedImages  # noqa: E402
from specialist.models.factory import create_specialist  # noqa: E402
from specialist.models.specialist import Specialist  # noqa: E402
from specialist.training.config import AugmentationConfig, TrainingConfig  # noqa: E402
from specialist.training.loop import train_local  # noqa: E402

SECTION = "## Training (site-agent)"
REAL_DATA = ROOT.parent / "shared" / "data" / "pneumoniamnist_dev.npz"


def load_images(path: Path | None, limit: int) -> tuple[LabelledImages, str]:
    if path is None and REAL_DATA.is_file():
        path, source = REAL_DATA, f"real: {REAL_DATA.name}"
    elif path is None:
        path = write_synthetic_npz(Path(tempfile.mkdtemp()) / "synthetic.npz", n_per_class=limit // 2 + 50)
        source = "synthetic (../shared/data absent)"
    else:
        source = path.name
    split = load_site_data(DataConfig(path=path), ["class0", "class1"], seed=0).split("train")
    split.labels = split.labels[:limit]
    return split, source


Loop = Callable[[Specialist, int], None]


def hand_loop(data: PreparedImages, options: TrainingConfig) -> Loop:
    """What a PyTorch user writes: shuffle, slice, forward, cross-entropy, backward, step."""
    inputs = data.batch(np.arange(len(data)))
    labels = torch.from_numpy(data.labels)

    def run(model: Specialist, seed: int) -> None:
        train_epoch(model, inputs, labels, options, seed)

    return run


def train_epoch(
    model: Specialist, inputs: torch.Tensor, labels: torch.Tensor, options: TrainingConfig, seed: int
) -> None:
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=options.lr, weight_decay=options.weight_decay, foreach=True
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    for batch in torch.split(order, options.batch_size):
        if len(batch) < 2:
            continue
        logits, _ = model(inputs[batch])
        loss = loss_fn(logits, labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def site_loop(data: PreparedImages, options: TrainingConfig) -> Loop:
    """site-agent's loop, exactly as ``site-agent train`` and the federation client run it."""

    def run(model: Specialist, seed: int) -> None:
        train_local(model, data, model.preprocessing, options, epochs=1, seed=seed)

    return run


def timed(loop: Loop, initial: Specialist, images: int) -> tuple[float, float]:
    """Images per wall-clock second and per CPU second of this process (steadier on a busy machine)."""
    model = copy.deepcopy(initial)
    wall, cpu = time.perf_counter(), time.process_time()
    loop(model, 0)
    return images / (time.perf_counter() - wall), images / (time.process_time() - cpu)


def measure(loops: dict[str, Loop], initial: Specialist, images: int, repeats: int) -> list[str]:
    """Warm up every loop, then time them interleaved; one table row per loop."""
    names = list(loops)
    for name in names:  # allocator, kernels, first-call costs
        timed(loops[name], initial, images)
    speeds: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            speeds[name].append(timed(loops[name], initial, images))
            wall, cpu = speeds[name][-1]
            print(f"  {name}: {wall:.1f} images/s, {cpu:.1f} images per CPU-second", flush=True)
    wall_ref = statistics.median(wall for wall, _ in speeds[names[0]])
    cpu_ref = statistics.median(cpu for _, cpu in speeds[names[0]])
    rows = []
    for name in names:
        wall = statistics.median(value for value, _ in speeds[name])
        cpu = statistics.median(value for _, value in speeds[name])
        runs = ", ".join(f"{value:.0f}" for value, _ in speeds[name])
        threads = torch.get_num_threads()
        rows.append(
            f"| {initial.backbone} | {initial.image_size} | {threads} | {name} | {wall:.1f} | {runs} "
            f"| {wall / wall_ref:.2f} | {cpu:.1f} | {cpu / cpu_ref:.2f} |"
        )
    return rows


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--data", type=Path, default=None, help="npz file (default: pneumonia dev data)")
    parser.add_argument("--backbones", default="resnet18", help="comma-separated backbone names")
    parser.add_argument(
        "--image-size", type=int, default=28, help="smallest input; a backbone may round it up"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=640, help="images per timed epoch")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions per loop")
    parser.add_argument("--threads", default="1,2", help="torch thread counts to measure, comma-separated")
    args = parser.parse_args()

    images, source = load_images(args.data, args.images)
    plain = TrainingConfig(
        batch_size=args.batch_size, class_weights="none", augmentation=AugmentationConfig(enabled=False)
    )
    defaults = plain.model_copy(update={"augmentation": AugmentationConfig(), "class_weights": "balanced"})
    rows = [
        "| backbone | input px | threads | loop | images/s (median) | runs | ratio "
        "| images per CPU-s (median) | ratio (CPU) |",
        "|---|---:|---:|---|---:|---|---:|---:|---:|",
    ]
    backbones = args.backbones.split(",")
    for done, backbone in enumerate(backbones, start=1):
        torch.manual_seed(0)
        initial = create_specialist(backbone, 2, args.image_size, pretrained=False)
        data = PreparedImages(images, initial.preprocessing)
        loops = {
            "hand-written PyTorch loop": hand_loop(data, plain),
            "site-agent loop (augmentation off)": site_loop(data, plain),
            "site-agent loop (default augmentation and class weights)": site_loop(data, defaults),
        }
        for threads in (int(value) for value in args.threads.split(",")):
            torch.set_num_threads(threads)
            rows += measure(loops, initial, len(data), args.repeats)
        # after every backbone, so that a long run interrupted later still leaves its finished rows
        report(args, backbones[:done], len(images), source, rows)


def report(args: argparse.Namespace, backbones: list[str], images: int, source: str, rows: list[str]) -> None:
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = f"5-minute load average at the end: {os.getloadavg()[1]:.1f} on {os.cpu_count()} CPUs."
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
    lines = [
        SECTION,
        "",
        f"`bench/train_throughput.py` ({machine}): {', '.join(backbones)}, random initialisation, "
        f"at the smallest input each accepts of at least {args.image_size} px, batch "
        f"{args.batch_size}, {images} training images ({source}), one epoch per run, "
        f"{args.repeats} interleaved repetitions after a warm-up, per thread count; same initial "
        "weights, AdamW (foreach), preprocessed images in memory. Ratios are to the hand-written loop "
        "at the same thread count; target >= 0.90 for site-agent with augmentation off (like the hand "
        "loop). Images per CPU-second of the process are shown too: on a shared machine they vary "
        f"less than wall-clock speed. {load} With as many torch threads as cores, other jobs on a "
        "shared machine stall torch's OpenMP thread barriers and single runs swing widely (see `runs`); "
        "the one-thread rows are then the reliable comparison.",
        "",
        *rows,
        "",
        f"Peak RSS of the benchmark process: {peak_mb:.0f} MB.",
        "",
    ]
    publish(lines, "benchmarks.md", "Benchmarks", write=args.write_docs)


if __name__ == "__main__":
    main()

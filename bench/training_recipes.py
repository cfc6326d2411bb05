"""Do the per-backbone recipes and modality-aware flips help? Each change against its baseline.

Every pair trains the same backbone on the same data with ``site-agent``'s trainer twice: once with
the baseline setting, once with the change, and reports the validation split (the trainer carves
its own test split out of ``train``, so ``val`` is never trained on or used for anything but the
best-epoch choice, as in ``site-agent train``). Small inputs, a random subset of ``train`` and few
epochs keep it to minutes on two shared CPU cores; differences of a few points on 78 breast images
are within noise, a stuck-at-0.50 balanced accuracy is not.

    .venv/bin/python bench/training_recipes.py                 # prints the table
    .venv/bin/python bench/training_recipes.py --write-docs    # also updates docs/results.md
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backbone_results import DATASETS, dataset  # noqa: E402
from bench.docs_section import publish  # noqa: E402
from site_agent.config import SiteConfig  # noqa: E402
from site_agent.data.config import DataConfig  # noqa: E402
from site_agent.data.loader import load_site_data  # noqa: E402
from site_agent.training.run_dir import load_run  # noqa: E402
from site_agent.training.trainer import train_run  # noqa: E402
from specialist.data import SiteData  # noqa: E402
from specialist.training.config import TrainingConfig  # noqa: E402

SECTION = "## Training recipes (per backbone) and modality-aware flips"
# (dataset, backbone, epochs, what changes, baseline settings, changed settings)
PAIRS: list[tuple[str, str, int, str, dict[str, Any], dict[str, Any]]] = [
    ("breast", "efficientnet_b0", 3, "recipe efficientnet", {"recipe": "default"}, {"recipe": "auto"}),
    ("pneumonia", "vgg16", 1, "recipe vgg", {"recipe": "default"}, {"recipe": "vgg"}),
    (
        "breast",
        "resnet18",
        3,
        "hflip on (ultrasound)",
        {"augmentation": {"hflip": False}},
        {"augmentation": {"hflip": True}},
    ),
]


# a change "helps" or "hurts" only beyond this many points of validation balanced accuracy (one run,
# one seed: smaller differences are within the noise of a single training run)
NOISE_POINTS = 3.0
STUCK = 0.5 + 1e-9  # balanced accuracy of a classifier that predicts one class


def verdict(name: str, backbone: str, change: str, baseline: float, changed: float) -> str:
    """One generated sentence: does the change help this pair, from the two balanced accuracies?"""
    delta = 100 * (changed - baseline)
    head = (
        f"{backbone} on {name}, {change}: validation balanced accuracy {baseline:.3f} -> {changed:.3f} "
        f"({delta:+.1f} points)"
    )
    if baseline <= STUCK and changed <= STUCK:
        return f"{head}: the change does not help; both settings predict one class."
    if baseline <= STUCK < changed and delta > NOISE_POINTS:
        return f"{head}: the change helps; the baseline predicts one class, the change learns."
    if delta > NOISE_POINTS:
        return f"{head}: the change helps in this run."
    if delta < -NOISE_POINTS:
        return f"{head}: the change hurts in this run; it does not help."
    return f"{head}: the change does not help measurably (within {NOISE_POINTS:g} points, one run)."


# fewer training images for a backbone too slow for --train-images on a busy CPU: vgg16's classifier
# (about 120 M parameters, also at 32 px) trained at about 1 image/s on one shared thread
MAX_TRAIN_IMAGES = {"vgg16": 200}


def subset(site_data: SiteData, images: int, seed: int) -> SiteData:
    """``site_data`` with a random ``images``-image subset of ``train`` (all of it when smaller)."""
    train = site_data.splits["train"]
    if len(train) <= images:
        return site_data
    chosen = np.sort(np.random.default_rng(seed).choice(len(train), images, replace=False))
    return dataclasses.replace(site_data, splits={**site_data.splits, "train": train.subset(chosen)})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", default="", help="comma-separated row numbers (1-based; default all)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--train-images", type=int, default=1000, help="random subset of train")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    chosen = [int(n) - 1 for n in args.pairs.split(",")] if args.pairs else range(len(PAIRS))
    rows = [
        "| data | backbone | epochs | change | setting | recipe | train images | val balanced acc. "
        "| macro-F1 | AUC | accuracy |",
        "|---|---|---:|---|---|---|---:|---:|---:|---:|---:|",
    ]
    sources = set()
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="gsco-recipes-") as tmp:
        for index in chosen:
            name, backbone, epochs, change, baseline, changed = PAIRS[index]
            path, source = dataset(name, Path(tmp))
            sources.add(f"{name}: {source}")
            _, labels, modality = DATASETS[name]
            site = SiteConfig(name="bench", task={"id": name, "labels": labels, "modality": modality})
            data = DataConfig(path=path)
            images = min(args.train_images, MAX_TRAIN_IMAGES.get(backbone, args.train_images))
            site_data = subset(load_site_data(data, labels, seed=0), images, seed=0)
            balanced = {}
            for setting, update in (("baseline", baseline), ("changed", changed)):
                training = TrainingConfig.model_validate(
                    {"image_size": args.image_size, "epochs": epochs, "device": "cpu", **update}
                )
                result = train_run(Path(tmp) / "site", site, data, backbone, training, site_data=site_data)
                val = result.val
                recipe = load_run(result.run_dir).training.recipe  # auto resolved to a name
                rows.append(
                    f"| {name} | {backbone} | {epochs} | {change} | {setting} | {recipe} "
                    f"| {len(site_data.splits['train'])} | {val['balanced_accuracy']:.3f} "
                    f"| {val['macro_f1']:.3f} | {val['auc']:.3f} | {val['accuracy']:.3f} |"
                )
                print(rows[-1], flush=True)
                balanced[setting] = val["balanced_accuracy"]
            verdicts.append(f"- {verdict(name, backbone, change, balanced['baseline'], balanced['changed'])}")
    intro = (
        f"`bench/training_recipes.py`: random initialisation, {args.image_size} px requested, seed 0, "
        f"{args.threads} torch thread(s), at most {args.train_images} training images (random subset; "
        + ", ".join(f"{b} at most {n}" for b, n in MAX_TRAIN_IMAGES.items())
        + "), "
        f"metrics of the best epoch on the validation split ({'; '.join(sorted(sources))}). Each pair "
        "differs in one setting only; the rest are the `site.yaml` defaults. 5-minute load average at "
        f"the end: {os.getloadavg()[1]:.1f} on {os.cpu_count()} CPUs."
    )
    skipped = [f"{PAIRS[i][1]} {PAIRS[i][3]}" for i in range(len(PAIRS)) if i not in chosen]
    if skipped:
        intro += f" Not run this time (`--pairs`): {'; '.join(skipped)}."
    observations = [
        f"Observations (generated; a change helps or hurts only beyond {NOISE_POINTS:g} points of balanced "
        "accuracy):",
        "",
        *verdicts,
    ]
    publish(
        [SECTION, "", intro, "", *rows, "", *observations, ""], "results.md", "Results", write=args.write_docs
    )


if __name__ == "__main__":
    main()

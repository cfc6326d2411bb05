"""Why the training defaults are what they are: one-epoch ablation on the pneumonia dev data.

Trains resnet18 at 28 px for one epoch (the README's one-minute run) with the defaults, then with
one setting changed at a time (class weighting, augmentation), and reports validation metrics.

    .venv/bin/python bench/training_defaults.py                 # prints the table
    .venv/bin/python bench/training_defaults.py --write-docs    # also updates docs/results.md
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backbone_results import dataset, parse_torch_args, train_site  # noqa: E402
from bench.common import bench_parser  # noqa: E402
from bench.docs_section import publish  # noqa: E402
from site_agent.training.trainer import train_run  # noqa: E402
from specialist.training.config import TrainingConfig  # noqa: E402

SECTION = "## Training defaults (one-epoch ablation)"
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults (balanced class weights, augmentation p=0.5)": {},
    "class_weights: sqrt": {"class_weights": "sqrt"},
    "class_weights: none": {"class_weights": "none"},
    "augmentation off": {"augmentation": {"enabled": False}},
    "augmentation on every image (p=1)": {"augmentation": {"probability": 1.0}},
}


def main() -> None:
    parser = bench_parser(__doc__)
    args = parse_torch_args(parser, threads=2)
    labels = ["normal", "pneumonia"]
    rows = [
        "| variant | val accuracy | balanced acc. | macro-F1 | AUC | ECE |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="gsco-defaults-") as tmp:
        path, source = dataset("pneumonia", Path(tmp))
        site, data, site_data = train_site("pneumonia", labels, "chest X-ray", path)
        for name, change in VARIANTS.items():
            training = TrainingConfig.model_validate(
                {"image_size": 28, "epochs": 1, "device": "cpu", **change}
            )
            val = train_run(Path(tmp) / "site", site, data, "resnet18", training, site_data=site_data).val
            rows.append(
                f"| {name} | {val['accuracy']:.3f} | {val['balanced_accuracy']:.3f} | {val['macro_f1']:.3f} "
                f"| {val['auc']:.3f} | {val['ece']:.3f} |"
            )
            print(rows[-1], flush=True)
    lines = [
        SECTION,
        "",
        f"`bench/training_defaults.py`: resnet18, 28 px, one epoch, seed 0, {args.threads} torch "
        "thread(s), pneumonia dev data "
        f"({source}), validation split; one setting changed at a time.",
        "",
        *rows,
    ]
    publish(lines, "results.md", "Results", write=args.write_docs)


if __name__ == "__main__":
    main()

"""The utility–privacy curve: accuracy and membership-inference AUC of resnet18 at ε = ∞, 8, 3, 1.

Trains resnet18 at the dev data's 28 px on the pneumonia dev data, once without DP (ε = ∞) and
once with DP-SGD per budget (same epochs, batch size, learning rate and seed), then measures the
held-out accuracy and the loss-threshold membership-inference AUC (with its bootstrap interval),
and the training time relative to the non-DP run.

    .venv/bin/python bench/privacy_curve.py                                # full training split
    .venv/bin/python bench/privacy_curve.py --max-train 1000 --epochs 2    # a quick subset
    .venv/bin/python bench/privacy_curve.py --write-docs                   # also updates docs/privacy.md
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backbone_results import dataset, parse_torch_args, train_site  # noqa: E402
from bench.common import bench_parser  # noqa: E402
from bench.docs_section import publish  # noqa: E402
from site_agent.training.run_dir import load_model  # noqa: E402
from site_agent.training.trainer import train_run  # noqa: E402
from specialist.data import SiteData  # noqa: E402
from specialist.export.membership import membership_audit  # noqa: E402
from specialist.inputs import PreparedImages  # noqa: E402
from specialist.metrics import compute_metrics, nll_per_example  # noqa: E402
from specialist.predict import predict  # noqa: E402
from specialist.training.config import TrainingConfig  # noqa: E402

SECTION = "## Utility–privacy curve (DP-SGD)"
LABELS = ["normal", "pneumonia"]
MIA_IMAGES = 1000


def _subset(path: Path, max_train: int | None, scratch: Path) -> Path:
    """The dev file, or a seeded subset of its training images in a scratch file (deleted after)."""
    if max_train is None:
        return path
    with np.load(path) as arrays:
        data = dict(arrays)
    keep = np.sort(np.random.default_rng(0).permutation(len(data["train_labels"]))[:max_train])
    data["train_images"], data["train_labels"] = data["train_images"][keep], data["train_labels"][keep]
    target = scratch / "subset.npz"
    np.savez(target, **data)
    return target


def _probs(run_dir: Path, images: Any, batch: int) -> tuple[np.ndarray, np.ndarray]:
    model = load_model(run_dir)
    prepared = PreparedImages(images, model.preprocessing, 512)
    probs, _ = predict(model, prepared, model.preprocessing, batch_size=batch)
    return probs, prepared.labels.astype(np.int64)


def measure(run_dir: Path, site_data: SiteData, batch: int) -> dict[str, Any]:
    """Held-out accuracy and the loss-threshold MIA (members: training images) of the best model."""
    held_name = "test" if len(site_data.splits.get("test", [])) else "val"
    held, held_labels = _probs(run_dir, site_data.split(held_name), batch)
    train = site_data.split("train")
    rng = np.random.default_rng(0)
    members = np.sort(rng.choice(len(train), min(len(train), MIA_IMAGES), replace=False))
    member_probs, member_labels = _probs(run_dir, train.subset(members), batch)
    audit = membership_audit(
        nll_per_example(member_probs, member_labels),
        nll_per_example(held, held_labels)[:MIA_IMAGES],
        non_members_from=held_name,
        seed=0,
    )
    metrics = compute_metrics(held_labels, held, tuple(LABELS))
    return {"held_out": held_name, "accuracy": metrics["accuracy"], "auc": metrics["auc"], "mia": audit}


def table(results: list[dict[str, Any]]) -> list[str]:
    """The curve as a markdown table, one row per ε (training time relative to the non-DP run)."""
    base = _baseline(results)
    rows = [
        "| ε budget | ε spent (δ 1e-5) | accuracy | AUC | MIA AUC [95 % CI] | training s | × non-DP |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ci = r["mia"]["ci95"]
        ratio = f"{r['training_seconds'] / base['training_seconds']:.1f}" if base else "n/a"
        rows.append(
            f"| {r['epsilon_budget']:g} | {r['epsilon_spent']:.2f} | {r['accuracy']:.3f} | {r['auc']:.3f} "
            f"| {r['mia']['auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] | {r['training_seconds']:.0f} | {ratio} |"
        )
    return rows


def _shown_arguments() -> str:
    """The command's arguments as the docs show them: without ``--rows FILE`` (a local path)."""
    args, shown = sys.argv[1:], []
    while args:
        arg = args.pop(0)
        if arg == "--rows":
            args = args[1:]
        elif not arg.startswith("--rows="):
            shown.append(arg)
    return " ".join(shown)


def _load_rows(path: Path | None) -> dict[float, dict[str, Any]]:
    """The rows an earlier (interrupted) run of the same command appended to ``path``, by ε budget."""
    if path is None or not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {float(row["epsilon_budget"]): row for row in rows}


def _baseline(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in results if math.isinf(r["epsilon_budget"])), None)


def _signed(value: float) -> str:
    return f"{value:+.3f}"


def _mia_verdict(row: dict[str, Any]) -> str:
    low, high = row["mia"]["ci95"]
    if low > 0.5:
        return "its interval lies above 0.5 (the losses reveal membership)"
    if high < 0.5:
        return "its interval lies below 0.5"
    return "its interval contains 0.5 (no membership signal measurable)"


def observations(results: list[dict[str, Any]]) -> list[str]:
    """Sentences that follow the numbers of ``results`` (never the expected trend by assumption)."""
    base = _baseline(results)
    private = sorted(
        (r for r in results if not math.isinf(r["epsilon_budget"])), key=lambda r: -r["epsilon_budget"]
    )
    lines = []
    if base is not None:
        lines.append(
            f"- Without DP: accuracy {base['accuracy']:.3f}, AUC {base['auc']:.3f}, MIA AUC "
            f"{base['mia']['auc']:.3f}; {_mia_verdict(base)}, so the non-DP model "
            + ("over-fits measurably." if base["mia"]["ci95"][0] > 0.5 else "does not over-fit measurably.")
        )
        for r in private:
            lines.append(
                f"- ε = {r['epsilon_budget']:g}: accuracy {_signed(r['accuracy'] - base['accuracy'])}, "
                f"AUC {_signed(r['auc'] - base['auc'])}, "
                f"MIA AUC {_signed(r['mia']['auc'] - base['mia']['auc'])} "
                f"against the non-DP model; {_mia_verdict(r)}; training took "
                f"{r['training_seconds'] / base['training_seconds']:.1f}× the non-DP time."
            )
    curve = ([base] if base is not None else []) + private
    if len(curve) > 1:
        falls = [b["mia"]["auc"] < a["mia"]["auc"] for a, b in zip(curve, curve[1:], strict=False)]
        trend = " → ".join(f"{r['mia']['auc']:.3f}" for r in curve)
        if all(falls):
            verdict = "falls at every step as ε falls"
        elif not any(falls):
            verdict = "does not fall at any step as ε falls"
        else:
            verdict = f"falls at {sum(falls)} of {len(falls)} steps as ε falls (not monotonically)"
        lines.append(f"- MIA AUC along the curve ({trend}) {verdict}.")
    over = [r for r in private if r["epsilon_spent"] > r["epsilon_budget"]]
    if private:
        exceeded = ", ".join(f"{r['epsilon_budget']:g}" for r in over)
        lines.append(
            f"- Spent ε EXCEEDS the budget at ε = {exceeded}."
            if over
            else "- Spent ε stays within the budget in every DP run."
        )
        stopped = [f"{r['epsilon_budget']:g}" for r in private if r["budget_exhausted"]]
        if stopped:
            lines.append(f"- The budget guard stopped training early at ε = {', '.join(stopped)}.")
    return lines


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--epsilons", default="inf,8,3,1", help="comma-separated; inf = without DP")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--max-train", type=int, default=None, help="use a seeded subset of the training images"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    parser.add_argument(
        "--rows",
        type=Path,
        default=None,
        help="JSON-lines file: each finished ε is appended, and ε already there are not trained again",
    )
    args = parse_torch_args(parser, threads=1)
    done = _load_rows(args.rows)
    results = []
    with tempfile.TemporaryDirectory(prefix="gsco-privacy-") as tmp:
        source_path, source = dataset("pneumonia", Path(tmp))
        path = _subset(source_path, args.max_train, Path(tmp))
        site, data, site_data = train_site("pneumonia", LABELS, "chest X-ray", path)
        for text in args.epsilons.split(","):
            epsilon = float(text)
            if epsilon in done:
                results.append(done[epsilon])
                continue
            dp = {"enabled": False} if math.isinf(epsilon) else {"enabled": True, "epsilon": epsilon}
            training = TrainingConfig.model_validate(
                {"image_size": 28, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                 "device": args.device, "num_threads": args.threads, "dp": dp,
                 "early_stopping": {"patience": args.epochs}}
            )  # fmt: skip
            started = time.perf_counter()
            result = train_run(Path(tmp) / "site", site, data, "resnet18", training, site_data=site_data)
            metrics = json.loads((result.run_dir / "metrics.json").read_text())
            privacy = metrics["privacy"] or {}
            row = {
                "epsilon_budget": epsilon,
                "epsilon_spent": privacy.get("epsilon", math.inf),
                "steps": privacy.get("steps"),
                "budget_exhausted": bool(privacy.get("budget_exhausted", False)),
                "training_seconds": metrics["training_seconds"],
                "wall_seconds": round(time.perf_counter() - started, 1),
                **measure(result.run_dir, site_data, args.batch_size * 2),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
            if args.rows is not None:
                with args.rows.open("a") as stream:
                    stream.write(json.dumps(row) + "\n")
    train_n = len(site_data.split("train"))
    lines = [
        SECTION,
        "",
        f"`bench/privacy_curve.py {_shown_arguments()}`: resnet18 (GroupNorm under DP), 28 px, "
        f"{args.epochs} epoch(s), batch {args.batch_size}, lr {args.lr:g}, seed 0, pneumonia dev data "
        f"({source}), {train_n} training images, held-out split `{results[0]['held_out']}`; MIA members are "
        f"up to {MIA_IMAGES} training images, non-members the held-out images; {args.threads} torch "
        f"thread(s) per run.",
        *(
            [
                "",
                "The training images are a seeded subset of the training split (`--max-train`); "
                "without it the script trains on the whole split.",
            ]
            if args.max_train
            else []
        ),
        "",
        *table(results),
        "",
        "What these numbers show (sentences computed from the table):",
        "",
        *observations(results),
        "",
    ]
    if args.json:
        print(json.dumps(results))
    publish(lines, "privacy.md", "Privacy at the site", write=args.write_docs)


if __name__ == "__main__":
    main()

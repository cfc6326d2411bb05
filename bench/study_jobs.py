"""A repeated study run one repeat at a time and with ``--jobs``: wall time, and the same results.

Runs ``gsco-hub study STUDY --jobs 1`` and then ``--jobs N`` on the same machine, each in its
own temporary work and output folders, and compares what they wrote: every evaluation
(``evaluation.json/.md/.png``) and case file (``cases.npz``) must be byte-identical, and
``study.json`` equal once the step timings (``seconds_per_step``, each repeat's ``seconds``) are
left out. The ratio is the one-at-a-time wall time over the ``--jobs`` one.

    python bench/study_jobs.py [docs/studies/pneumonia-seeds/study.yaml] [--jobs N] [--write-docs]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_parser  # noqa: E402
from bench.docs_section import publish  # noqa: E402
from hub.federation.flwr_cli import venv_bin  # noqa: E402
from hub.study.spec import load_study  # noqa: E402

DEFAULT_STUDY = ROOT / "docs" / "studies" / "pneumonia-seeds" / "study.yaml"
HEADING = "## Study runner: repeats at once (`gsco-hub study --jobs`)"


def _run(study: Path, jobs: int, folder: Path) -> tuple[float, Path]:
    """Run the study with ``--jobs jobs`` in ``folder``; its wall time and output folder."""
    out, work = folder / "out", folder / "work"
    argv = [
        venv_bin("gsco-hub"),
        "study",
        str(study),
        "--out",
        str(out),
        "--work",
        str(work),
        "--jobs",
        str(jobs),
    ]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"--jobs {jobs} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed, out


def _without_timings(facts: dict[str, Any]) -> dict[str, Any]:
    """``study.json`` without its step timings (``seconds_per_step``, each repeat's ``seconds``)."""
    facts = {key: value for key, value in facts.items() if key != "seconds_per_step"}
    if "repeats" in facts:
        facts["repeats"] = [{k: v for k, v in r.items() if k != "seconds"} for r in facts["repeats"]]
    return facts


def pool_bound(seconds: list[float], jobs: int) -> float:
    """The pool's wall time if every repeat took as long beside another as it did alone.

    The pool hands the repeats out in order, each to the first worker that is free.
    """
    free = [0.0] * jobs
    for took in seconds:
        free[free.index(min(free))] += took
    return max(free)


def compare_outputs(first: Path, second: Path) -> tuple[int, list[str]]:
    """How many files were compared, and those that differ (or exist on one side only).

    Every file byte for byte but ``study.json``, compared without its timings, and ``study.md``,
    which is rendered from it and shows them.
    """
    names = {p.relative_to(root) for root in (first, second) for p in root.rglob("*") if p.is_file()}
    names = {name for name in names if name.name != "study.md"}  # it shows the step timings
    differ = []
    for name in sorted(names):
        a, b = first / name, second / name
        if not (a.is_file() and b.is_file()):
            differ.append(f"{name} (one side only)")
        elif name.name == "study.json":
            if _without_timings(json.loads(a.read_text())) != _without_timings(json.loads(b.read_text())):
                differ.append(str(name))
        elif a.read_bytes() != b.read_bytes():
            differ.append(str(name))
    return len(names), differ


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "study", nargs="?", type=Path, default=DEFAULT_STUDY, help="a study file with repeats"
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="default: the repeats, at most CPUs / threads, at least 2"
    )
    args = parser.parse_args()
    spec = load_study(args.study)
    if spec.repeats < 2:
        raise SystemExit(f"{args.study} has {spec.repeats} repeat: --jobs has nothing to run at once")
    cores = os.cpu_count() or 1
    jobs = args.jobs or max(2, min(spec.repeats, cores // spec.threads))
    with tempfile.TemporaryDirectory(prefix="gsco-bench-study-jobs-") as tmp:
        one_s, one_out = _run(args.study, 1, Path(tmp) / "one")
        many_s, many_out = _run(args.study, jobs, Path(tmp) / "many")
        compared, differ = compare_outputs(one_out, many_out)
        alone = [r["seconds"] for r in json.loads((one_out / "study.json").read_text())["repeats"]]
    load = os.getloadavg()[1]
    bound = pool_bound(alone, jobs)
    study = (
        args.study.resolve().relative_to(ROOT) if args.study.resolve().is_relative_to(ROOT) else args.study
    )
    lines = [
        HEADING,
        "",
        f"`bench/study_jobs.py {study}`: the study ({spec.repeats} repeats, {len(spec.sites)} sites, "
        f"`threads: {spec.threads}`) run twice on this machine ({cores} CPUs), one repeat at a time and then "
        f"with `--jobs {jobs}`, each in a fresh work folder; 5-minute load average at the end {load:.1f}.",
        "",
        "| run | wall time | ratio to one at a time |",
        "|---|---:|---:|",
        f"| `--jobs 1` (baseline) | {one_s / 60:.1f} min | 1.00 |",
        f"| `--jobs {jobs}` | {many_s / 60:.1f} min | {one_s / many_s:.2f} x faster |",
        "",
        f"Same results: {compared} files compared (every `evaluation.json/.md/.png` and `cases.npz` byte "
        "for byte, `study.json` without its step timings; `study.md` shows the timings and is left out): "
        + ("all equal." if not differ else f"**{len(differ)} differ**: {', '.join(differ)}."),
        "",
        "A repeat is a chain of CLI subprocesses (two for the registry, six per site, two per arm), one at "
        "a time, each training or evaluating with the study's `threads`; repeats side by side use the cores "
        f"one repeat leaves idle. Alone, the repeats' steps took {', '.join(f'{t / 60:.1f}' for t in alone)} "
        f"min; had each taken as long beside another, `--jobs {jobs}` (which hands the repeats out in order "
        f"to the first free job) would have needed {bound / 60:.1f} min, {sum(alone) / bound:.2f} x faster: "
        "the most this run could gain. A study run once gains nothing.",
    ]
    publish(lines, "benchmarks.md", "Benchmarks", write=args.write_docs)
    if differ:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

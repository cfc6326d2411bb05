"""Rerun the shipped studies, each after the study it compares with, then regenerate results.md.

    python bench/rerun_studies.py [--jobs N] [--only NAME ...] [--dry-run]

For each study of ``bench/render_results.py``'s ``ORDER`` this runs ``gsco-hub study
docs/studies/NAME/study.yaml --out docs/studies/NAME --jobs N``, then ``bench/render_results.py
--write`` and ``bench/arbiter_alternatives.py --write-docs`` (which replays the rules on the
``cases.npz`` files the reruns wrote). A study that compares with another (``compare_with``)
reads that study's report when it starts and when it ends, so the order is checked before
anything runs. Studies compared with one another must run on one machine (docs/studies/README.md,
"Reproducibility"), so ``--only`` reruns the named studies but regenerates nothing: results.md
would mix them with the others' figures from another run.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.render_results import ORDER, STUDIES_DIR  # noqa: E402
from hub.federation.flwr_cli import venv_bin  # noqa: E402
from hub.study.spec import read_study  # noqa: E402


def compared_with(name: str, studies_dir: Path = STUDIES_DIR) -> str | None:
    """The study whose report ``name`` compares with (its folder name), or None.

    Its data sets need not be on this machine to plan (``read_study``, not ``load_study``).
    """
    spec = read_study(studies_dir / name / "study.yaml")
    return spec.compare_with.parent.name if spec.compare_with else None


def check_order(order: tuple[str, ...], studies_dir: Path = STUDIES_DIR) -> None:
    """Stop unless every study comes after the one it compares with."""
    for index, name in enumerate(order):
        twin = compared_with(name, studies_dir)
        if twin is not None and twin not in order[:index]:
            raise SystemExit(f"{name} compares with {twin}, which does not come before it in ORDER")


def commands(names: list[str], jobs: int, *, render: bool) -> list[list[str]]:
    """Every command, in the order it runs: the studies, then (``render``) the two renderers."""
    studies = [
        [venv_bin("gsco-hub"), "study", f"docs/studies/{name}/study.yaml", "--out", f"docs/studies/{name}",
         "--jobs", str(jobs)]
        for name in names
    ]  # fmt: skip
    renderers = [
        [sys.executable, "bench/render_results.py", "--write"],
        [sys.executable, "bench/arbiter_alternatives.py", "--write-docs"],
    ]
    return [*studies, *(renderers if render else [])]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="repeats of a study run at once (gsco-hub study --jobs)"
    )
    parser.add_argument(
        "--only", nargs="+", choices=ORDER, metavar="NAME", help="rerun these studies, render nothing"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args()
    check_order(ORDER)
    names = [name for name in ORDER if args.only is None or name in args.only]
    for argv in commands(names, args.jobs, render=args.only is None):
        print("$ " + shlex.join([Path(argv[0]).name, *argv[1:]]), flush=True)
        if not args.dry_run and subprocess.run(argv, cwd=ROOT, check=False).returncode != 0:  # noqa: S603
            raise SystemExit(f"stopped: `{shlex.join(argv[1:3])}` failed; the commands before it ran")
    if args.only is not None:
        print("results.md not regenerated (--only): render it once every study has rerun on this machine")


if __name__ == "__main__":
    main()

"""Run a study: shards, then the real flow in a fresh home, then the study's own report.

site-agent init/train/export/publish per site; gsco-registry init, tasks create, sites enroll,
approve; gsco-hub cases import and evaluate. Everything but ``--out`` lives in the work folder.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import yaml

from gsco_common.errors import StudyError
from hub.study.facts import load_baseline, study_result
from hub.study.outputs import move_into
from hub.study.plan import Arm, StudyShards, plan_shards
from hub.study.repeats import with_repeats
from hub.study.report import write_study
from hub.study.shards import Shard, apply_shift, read_split, write_shard
from hub.study.spec import SiteSpec, StudySpec
from hub.study.steps import Announce, Steps, Stopped, study_env
from registry.bundle.provenance import content_digest

REVIEWER = "gsco-hub study"
CASES_FILE = "cases.npz"  # each evaluation's per-case decision inputs (hub.evaluation.case_inputs)
STAGED_OUT = "report"  # in the work folder: the study's outputs until every step has run


def _write_data(spec: StudySpec, shards: StudyShards, data_dir: Path) -> dict[str, Path]:
    """Each site's shard, and each arm's library and evaluation set, as their own .npz files."""
    cache: dict[tuple[str, str], np.ndarray] = {}

    def images(shard: Shard) -> np.ndarray:
        source = (shard.spec.dataset, shard.spec.split)
        if source not in cache:
            path = spec.datasets[shard.spec.dataset]
            cache[source] = read_split(path, shard.spec.split, len(spec.task.labels))[0]
        return cache[source][shard.indices]

    def about(shard: Shard, extra: str = "") -> str:
        return f"gsco-hub study {spec.name}: {shard.key} = {shard.spec.model_dump_json()}{extra}"

    paths = {
        name: write_shard(data_dir / f"site-{name}.npz", "train", images(shard), shard.labels, about(shard))
        for name, shard in shards.sites.items()
    }
    for arm in shards.arms:
        lib, site = arm.library, arm.library_spec.site
        paths[f"library:{arm.name}"] = (
            paths[site]
            if site
            else write_shard(
                data_dir / f"library-{arm.name}.npz", lib.spec.split, images(lib), lib.labels, about(lib)
            )
        )
        ev, shift = arm.evaluation, arm.evaluation_spec.shift
        paths[f"evaluation:{arm.name}"] = write_shard(
            data_dir / f"evaluation-{arm.name}.npz",
            ev.spec.split,
            apply_shift(images(ev), shift, spec.seed),
            ev.labels,
            about(ev, f", shift {shift.model_dump_json()}"),
        )
    return paths


def _site_yaml(site_dir: Path, site: SiteSpec, threads: int) -> None:
    """The study's training overrides in the site's own ``site.yaml`` (validated by site-agent)."""
    path = site_dir / "site.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["training"] = {**config.get("training", {}), "num_threads": threads, **site.training}
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _train_site(steps: Steps, spec: StudySpec, site: SiteSpec, data: Path, sites_dir: Path) -> dict[str, Any]:
    task = spec.task
    site_dir = sites_dir / site.name
    name = site.name
    steps.run(
        f"{name}: init", "site-agent", "init", str(site_dir), "--name", name, "--task", task.id,
        "--labels", ",".join(task.labels), "--modality", task.modality,
    )  # fmt: skip
    _site_yaml(site_dir, site, spec.threads)
    steps.run(
        f"{name}: enroll",
        "gsco-registry",
        "sites",
        "enroll",
        name,
        "--public-key",
        str(site_dir / "keys" / "site.pub"),
    )
    trained = steps.run_json(
        f"{name}: train {site.backbone} {site.image_size} px, {site.epochs} epoch(s)", "site-agent", "train",
        "--site", str(site_dir), "--data", str(data), "--backbone", site.backbone,
        "--image-size", str(site.image_size), "--epochs", str(site.epochs), "--seed", str(site.seed),
    )[0]  # fmt: skip
    run_dir = trained["run_dir"]
    steps.run(f"{name}: export", "site-agent", "export", run_dir)
    published = steps.run_json(f"{name}: publish", "site-agent", "publish", run_dir)
    policy = ("--policy", str(spec.approval_policy)) if spec.approval_policy else ()
    steps.run(
        f"{name}: approve {published['name']} v{published['version']}", "gsco-registry", "approve",
        published["name"], str(published["version"]), "--reviewer", REVIEWER, "--note", f"study {spec.name}",
        *policy,
    )  # fmt: skip
    card = json.loads((Path(run_dir) / "bundle" / "card.json").read_text(encoding="utf-8"))
    return {
        "model": f"{published['name']} v{published['version']}",
        "best_epoch": trained["best_epoch"],
        "val": trained["val"],
        "training_set_digest": card.get("data", {}).get("training_set_digest"),
    }


def _evaluate_arm(
    steps: Steps, task_id: str, arm: Arm, paths: dict[str, Path], out: Path, reference: str | None
) -> dict[str, Any]:
    """Import the arm's case library, then evaluate every method on its evaluation set.

    ``reference``: the model every method is compared with (``gsco-hub evaluate --reference``).
    """
    suffix = "" if arm.name == "main" else f" ({arm.name})"
    named = ("--reference", reference) if reference else ()
    library = steps.run_json(
        f"hub: import the case library{suffix}", "gsco-hub", "cases", "import", "--task", task_id,
        "--data", str(paths[f"library:{arm.name}"]), "--split", arm.library_split,
    )  # fmt: skip
    evaluation = steps.run_json(
        f"hub: evaluate{suffix}", "gsco-hub", "evaluate", "--task", task_id,
        "--data", str(paths[f"evaluation:{arm.name}"]), "--split", arm.evaluation.spec.split,
        "--out", str(out), "--cases-out", str(out / CASES_FILE), *named,
    )  # fmt: skip
    return {"library": library, "evaluation": evaluation}


def _run_once(
    spec: StudySpec,
    spec_text: str,
    out: Path,
    work: Path,
    announce: Announce,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """One run of ``spec`` in the fresh home ``work``: its study facts (evaluations written to ``out``).

    ``stop``: set when another repeat failed; no further step of this run starts.
    """
    shards = plan_shards(spec)
    paths = _write_data(spec, shards, work / "data")
    announce("shards written and checked for overlaps", 0.0)
    steps = Steps(study_env(work), work / "logs", announce, stop=stop)
    task = spec.task
    steps.run("registry: init", "gsco-registry", "init")
    steps.run(
        f"registry: create task {task.id}", "gsco-registry", "tasks", "create", task.id,
        "--labels", ",".join(task.labels), "--modality", task.modality,
    )  # fmt: skip
    trained = {
        site.name: _train_site(steps, spec, site, paths[site.name], work / "sites") for site in spec.sites
    }
    reference = trained[spec.reference_site]["model"] if spec.reference_site else None
    outputs = [
        _evaluate_arm(
            steps, task.id, arm, paths, out if arm.name == "main" else out / "variants" / arm.name, reference
        )
        for arm in shards.arms
    ]
    digests = {name: content_digest(path) for name, path in spec.datasets.items()}
    return study_result(spec, spec_text, shards, trained, outputs, digests, steps.timings)


def repeat_out(out: Path, index: int) -> Path:
    """Where repeat ``index`` writes its evaluations: ``out`` for the first, ``out/repeats/N`` after."""
    return out if index == 0 else out / "repeats" / str(index + 1)


def repeat_of(where: Path) -> int:
    """The repeat (from 1) whose evaluation is in ``where``, a folder relative to ``out``.

    What :func:`repeat_out` did, undone: ``repeats/N/...`` is repeat N, any other folder repeat 1.
    """
    parts = where.parts
    return int(parts[1]) if len(parts) > 1 and parts[0] == "repeats" else 1


def _run_repeats(
    spec: StudySpec, spec_text: str, out: Path, work: Path, announce: Announce, jobs: int
) -> list[dict[str, Any]]:
    """Every repeat of ``spec``, up to ``jobs`` at a time; their facts in repeat order.

    Repeats share nothing but the study file: each has its own home, shards and outputs, and its
    steps are the same subprocesses whether it runs alone or beside another. The first repeat to
    fail stops the others: they start no further step, and a repeat not yet begun never begins.
    Its failure is the error raised, named by its repeat; a step that was already running in
    another repeat and failed too is named in its hint. An interrupt (Ctrl-C) stops them the same
    way: a running step ends (with the terminal's Ctrl-C, at once), then no further step starts.
    """
    stop = threading.Event()
    failures: list[BaseException] = []
    lock = threading.Lock()

    def one(index: int) -> dict[str, Any] | None:
        if stop.is_set():
            return None
        prefix = f"repeat {index + 1}/{spec.repeats}: "

        def announce_repeat(step: str, seconds: float) -> None:
            announce(prefix + step, seconds)

        try:
            return _run_once(
                spec.repeat(index), spec_text, repeat_out(out, index), work / f"repeat-{index + 1}",
                announce_repeat, stop,
            )  # fmt: skip
        except Stopped:
            return None
        except StudyError as error:
            failed(StudyError(prefix + error.message, hint=error.hint))
        except BaseException as error:
            failed(error)

    def failed(error: BaseException) -> NoReturn:
        """Keep every failure in the order they came, stop the other repeats, raise ``error``."""
        with lock:
            failures.append(error)
            stop.set()
        raise error

    if jobs == 1:
        return [one(index) for index in range(spec.repeats)]  # the first failure raises here
    pool = ThreadPoolExecutor(max_workers=min(jobs, spec.repeats), thread_name_prefix="study-repeat")
    futures = [pool.submit(one, index) for index in range(spec.repeats)]
    try:
        wait(futures)
    except BaseException:  # interrupted while the repeats run
        stop.set()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if failures:
        raise _with_the_others(failures)
    return [future.result() for future in futures]


def _with_the_others(failures: list[BaseException]) -> BaseException:
    """The first failure, its hint naming every other repeat that failed while it stopped them."""
    first, others = failures[0], [f for f in failures[1:] if isinstance(f, StudyError)]
    if not others or not isinstance(first, StudyError):
        return first
    also = "\n".join(f"also failed: {other.message}" for other in others)
    return StudyError(first.message, hint=f"{first.hint}\n{also}" if first.hint else also)


def run_study(
    spec: StudySpec, spec_text: str, out: Path, work: Path, announce: Announce, *, jobs: int = 1
) -> dict[str, Any]:
    """Run every step of ``spec`` (``repeats`` times); write the evaluations and the study report to ``out``.

    The main arm's evaluation goes to ``out``, each variant's to ``out/variants/NAME``. With
    ``repeats > 1`` each repeat runs in its own fresh home ``work/repeat-N`` (up to ``jobs`` of
    them at once) and repeats after the first write their evaluations under ``out/repeats/N``;
    study.json holds the first repeat's facts at the top level, every repeat's scores under
    ``repeats`` and the figures across them. Every file is written under ``work/report`` first
    and moved into ``out`` once the whole study has run, so a study that fails or is stopped
    leaves ``out`` as it was (what it finished stays in the work folder).
    """
    staged = work / STAGED_OUT
    if spec.repeats == 1:
        result = _run_once(spec, spec_text, staged, work, announce)
    else:
        result = with_repeats(_run_repeats(spec, spec_text, staged, work, announce, jobs))
    write_study(result, staged, load_baseline(spec.compare_with))
    move_into(staged, out)
    return result

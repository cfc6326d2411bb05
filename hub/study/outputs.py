"""What a study's ``--out`` folder may already hold: no other study's report, no stray run folder.

A rerun overwrites its own files. A folder with another study's report, or with a variant or
repeat folder this study does not have, would end up mixing two studies' reports (and
``bench/`` reads every ``cases.npz`` under it), so it is refused before anything runs; nothing
is deleted. Other files are left as they are. A run writes its files elsewhere first and
:func:`move_into` ``out`` only once it has finished, so a failed run changes nothing here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from gsco_common.errors import ConfigError, StudyError
from gsco_common.paths import check_output_folder
from hub.study.facts import read_report
from hub.study.spec import StudySpec


def check_out(spec: StudySpec, out: Path) -> None:
    """:class:`ConfigError` unless ``out`` is free for ``spec``'s report (see the module)."""
    check_output_folder("--out", out)
    report = out / "study.json"
    if report.is_file():
        try:
            study = read_report(report)["study"]
        except ConfigError as exc:
            raise ConfigError(f"--out holds a study.json not of {spec.name!r}: {exc.message}") from None
        if study != spec.name:
            raise ConfigError(
                f"--out {out} holds the report of {study!r}, not of {spec.name!r}",
                hint="pick an empty folder, or that study's own",
            )
    expected = {
        "variants": {v.name for v in spec.variants},
        "repeats": {str(n) for n in range(2, spec.repeats + 1)},
    }
    for kind, names in expected.items():
        folder = out / kind
        present = [p.name for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
        stale = sorted(name for name in present if name not in names)
        if stale:
            raise ConfigError(
                f"--out {out} holds {kind}/{stale[0]}, which this study does not have",
                hint=f"remove {folder / stale[0]} (an earlier version's output), or pick another --out",
            )


def move_into(staged: Path, out: Path) -> None:
    """Move every file under ``staged`` to the same place under ``out``, replacing an earlier one.

    In two phases, so that a failure leaves ``out`` as it was: every file is first copied beside
    its target under a hidden temporary name (``--work`` may lie on another file system, where a
    move is a copy that can fail part-way, on a full disk say); only once all of them are there
    does each replace its target, by a rename within one folder, which needs no space. A copy that
    fails removes the copies and folders made so far and raises :class:`StudyError`; ``staged``
    keeps every file.
    """
    sources = sorted(path for path in staged.rglob("*") if path.is_file())
    made: list[Path] = []  # folders and temporary copies this call created under ``out``
    renames: list[tuple[Path, Path]] = []
    try:
        for source in sources:
            target = out / source.relative_to(staged)
            made.extend(reversed([d for d in (target.parent, *target.parent.parents) if not d.exists()]))
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            made.append(partial)
            renames.append((partial, target))
            shutil.copyfile(source, partial)
    except OSError as exc:
        for path in reversed(made):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)
        raise StudyError(
            f"could not write the study's report into --out {out}: {exc.strerror or exc}",
            hint=f"--out is as it was; the finished report is in {staged}",
        ) from None
    for partial, target in renames:
        os.replace(partial, target)
    for source in sources:
        source.unlink()

"""What a study's ``--out`` folder may already hold: an earlier run of the same study, or nothing.

A rerun overwrites its own files. A folder of another study, or with a variant or repeat this
study does not have, would end up mixing two studies' reports (and ``bench/`` reads every
``cases.npz`` under it), so it is refused before anything runs; nothing is deleted.
"""

from __future__ import annotations

import json
from pathlib import Path

from gsco_common.cli import check_writable_folder
from gsco_common.errors import ConfigError
from hub.study.spec import StudySpec


def check_out(spec: StudySpec, out: Path) -> None:
    """:class:`ConfigError` unless ``out`` is free for ``spec``'s report (see the module)."""
    check_writable_folder("--out", out)
    report = out / "study.json"
    if report.is_file():
        try:
            found = json.loads(report.read_text(encoding="utf-8")).get("study")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            found = None
        if found != spec.name:
            raise ConfigError(
                f"--out {out} holds the report of {'another study' if found is None else repr(found)}, "
                f"not of {spec.name!r}",
                hint="pick an empty folder, or that study's own",
            )
    expected = {
        "variants": {v.name for v in spec.variants},
        "repeats": {str(n) for n in range(2, spec.repeats + 1)},
    }
    for kind, names in expected.items():
        folder = out / kind
        stale = sorted(p.name for p in folder.iterdir() if p.name not in names) if folder.is_dir() else []
        if stale:
            raise ConfigError(
                f"--out {out} holds {kind}/{stale[0]}, which this study does not have",
                hint=f"remove {folder / stale[0]} (an earlier version's output), or pick another --out",
            )

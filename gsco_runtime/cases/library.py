"""The hub's case library: de-identified reference cases (image, label, optional report, case id).

A report is free text shown to the generalist beside the case's label; it is imported from a
CSV's ``report`` column, stored on one line and refused when it looks identifying.

Stored per task under ``<home>/hub/cases/<task>/`` as ``images.npz`` plus ``cases.json``. The library
digest covers labels, ids and pixels, so retrieval indexes cached per (model digest, library
digest) are rebuilt exactly when the content changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gsco_common.errors import DataError, PrivacyError
from gsco_common.ids import CASE_ID, TASK_ID
from gsco_common.text import first_items
from gsco_runtime.cases.readers import RawCases
from registry.bundle.free_text import looks_identifying

FORMAT_VERSION = 1


@dataclass(frozen=True)
class CaseLibrary:
    """Reference cases of one task, held in memory."""

    task_id: str
    label_names: tuple[str, ...]
    images: tuple[np.ndarray, ...]
    labels: np.ndarray
    case_ids: tuple[str, ...]
    reports: tuple[str, ...]
    digest: str
    source_digest: str | None = None
    """What the cases were imported from, as a whole (``registry.bundle.provenance``)."""

    def __len__(self) -> int:
        return len(self.images)

    def class_counts(self) -> list[int]:
        return np.bincount(self.labels, minlength=len(self.label_names)).tolist()


def library_digest(
    label_names: Sequence[str], images: Sequence[np.ndarray], labels: np.ndarray, case_ids: Sequence[str]
) -> str:
    """SHA-256 over the label names, case ids, labels and every image's shape, dtype and pixels."""
    digest = hashlib.sha256()
    digest.update(json.dumps([list(label_names), list(case_ids)]).encode())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    for image in images:
        digest.update(f"{image.shape}{image.dtype}".encode())
        digest.update(np.ascontiguousarray(image).tobytes())
    return "sha256:" + digest.hexdigest()


def build_library(
    task_id: str, label_names: Sequence[str], raw: RawCases, source_digest: str | None = None
) -> CaseLibrary:
    """Validate raw cases and give every case an id (generated ids when the source has none).

    ``source_digest`` names the imported data as a whole (content, split, selection), so that
    the consensus arbiter can tell a library that a specialist trained on.
    """
    if not TASK_ID.match(task_id):
        raise DataError("the task id must be letters, digits, '.', '_' or '-' (at most 64)")
    count = len(raw.images)
    if raw.case_ids:
        check_given_case_ids(raw.case_ids)
    case_ids = list(raw.case_ids) if raw.case_ids else [f"{task_id}-{i + 1:06d}" for i in range(count)]
    if len(set(case_ids)) != len(case_ids) or any(not cid for cid in case_ids):
        raise DataError("case ids must be unique and non-empty", hint="fix the case_id column")
    reports = [" ".join(r.split()) for r in raw.reports] if raw.reports else [""] * count
    labels = np.asarray(raw.labels, dtype=np.int64).reshape(-1)
    if labels.shape[0] != count or len(reports) != count:
        raise DataError("the case library would have different numbers of images, labels and reports")
    refuse_identifying(reports, "the report text")
    digest = library_digest(label_names, raw.images, labels, case_ids)
    return CaseLibrary(
        task_id=task_id,
        label_names=tuple(label_names),
        images=tuple(raw.images),
        labels=labels,
        case_ids=tuple(case_ids),
        reports=tuple(reports),
        digest=digest,
        source_digest=source_digest,
    )


def check_given_case_ids(case_ids: Sequence[str]) -> None:
    """A CSV's case ids: URL-safe (letters, digits, '.', '_', '-'; at most 64) and not identifying.

    They are shown to clinicians and the generalist and travel in thumbnail URLs, so an
    accession or record number, a name or a date in them would leave the hub with every answer
    (the generated ids ``<task>-000001`` are counters, never checked). Errors name the rows.
    """
    malformed = [i for i, cid in enumerate(case_ids) if cid and not CASE_ID.match(cid)]
    if malformed:
        raise DataError(
            f"the case_id of case row(s) {_rows(malformed)} is not letters, digits, '.', '_' or '-' "
            "(at most 64, starting with a letter or digit)",
            hint="nothing was imported; use short opaque ids, or drop the case_id column to generate them",
        )
    refuse_identifying(case_ids, "the case_id")


def refuse_identifying(texts: Sequence[str], what: str) -> None:
    """Refuse texts that look identifying (names, record numbers, dates, addresses, paths).

    ``what`` names the column in the error, which names the rows, never the text.
    """
    rows = [i for i, text in enumerate(texts) if text and looks_identifying(text)]
    if rows:
        raise PrivacyError(
            f"{what} of case row(s) {_rows(rows)} looks identifying",
            hint="nothing was imported; remove names, record numbers (6 or more digits), dates, "
            "phone numbers, addresses and paths",
        )


def _rows(indices: Sequence[int]) -> str:
    """Row numbers from 1, the first ten shown."""
    return first_items([str(i + 1) for i in indices], 10)


def library_dir(home: Path, task_id: str) -> Path:
    if not TASK_ID.match(task_id):
        raise DataError("the task id must be letters, digits, '.', '_' or '-' (at most 64)")
    return home / "hub" / "cases" / task_id


def save_library(library: CaseLibrary, home: Path) -> Path:
    """Write the library (replacing the task's previous one) and return its folder."""
    folder = library_dir(home, library.task_id)
    folder.mkdir(parents=True, exist_ok=True)
    shapes = {(img.shape, img.dtype.str) for img in library.images}
    arrays = (
        {"images": np.stack(library.images)}
        if len(shapes) == 1
        else {f"image_{i}": img for i, img in enumerate(library.images)}
    )
    tmp_npz = folder / "images.tmp.npz"
    np.savez_compressed(tmp_npz, labels=library.labels, **arrays)
    meta = {
        "format_version": FORMAT_VERSION,
        "task_id": library.task_id,
        "label_names": list(library.label_names),
        "digest": library.digest,
        "source_digest": library.source_digest,
        "cases": [
            {"case_id": cid, "label": int(lab), "report": rep}
            for cid, lab, rep in zip(library.case_ids, library.labels, library.reports, strict=True)
        ],
    }
    tmp_json = folder / "cases.tmp.json"
    tmp_json.write_text(json.dumps(meta, indent=1))
    tmp_npz.replace(folder / "images.npz")
    tmp_json.replace(folder / "cases.json")
    return folder


def stored_library_digest(home: Path, task_id: str) -> str | None:
    """The digest the task's stored library records, read without its images.

    None when no library was imported or its record cannot be read: :func:`load_library` then
    reports the damage to whoever reads the library next.
    """
    try:
        meta = json.loads((library_dir(home, task_id) / "cases.json").read_text())
    except (OSError, ValueError):
        return None
    digest = meta.get("digest") if isinstance(meta, dict) else None
    return digest if isinstance(digest, str) else None


class StoredLibraryDigests:
    """The digest each task's stored library records, its record re-read only when the file changes.

    The hub asks at every poll whether a library was imported since it was read; parsing
    ``cases.json`` (every case's id and report) each time costs more than the answer. An import
    replaces the file (a new inode), so its inode, size, modification and change times stand for it.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self._known: dict[str, tuple[tuple[int, int, int, int], str | None]] = {}

    def digest(self, task_id: str) -> str | None:
        """As :func:`stored_library_digest`, read again only when the task's record changed."""
        try:
            stat = (library_dir(self.home, task_id) / "cases.json").stat()
        except OSError:
            self._known.pop(task_id, None)
            return None
        stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        known = self._known.get(task_id)
        if known is not None and known[0] == stamp:
            return known[1]
        digest = stored_library_digest(self.home, task_id)
        self._known[task_id] = (stamp, digest)
        return digest


def load_library(home: Path, task_id: str) -> CaseLibrary | None:
    """The task's stored library, or None when none was imported."""
    folder = library_dir(home, task_id)
    meta_path, npz_path = folder / "cases.json", folder / "images.npz"
    if not meta_path.is_file() or not npz_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        with np.load(npz_path, allow_pickle=False) as data:
            if "images" in data.files:
                stacked = data["images"]
                images = tuple(stacked[i] for i in range(stacked.shape[0]))
            else:
                images = tuple(data[f"image_{i}"] for i in range(len(meta["cases"])))
            labels = np.asarray(data["labels"], dtype=np.int64)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(
            f"the stored case library of task {task_id!r} is damaged",
            hint="run `gsco-hub cases import` again",
        ) from exc
    return CaseLibrary(
        task_id=meta["task_id"],
        label_names=tuple(meta["label_names"]),
        images=images,
        labels=labels,
        case_ids=tuple(case["case_id"] for case in meta["cases"]),
        reports=tuple(case["report"] for case in meta["cases"]),
        digest=meta["digest"],
        source_digest=meta.get("source_digest"),
    )

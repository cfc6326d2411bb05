"""Local cache of verified bundles, so the runtime can start and serve while the registry is down.

Layout under ``<cache>/``: ``bundles/<id>/bundle/`` holds a verified bundle exactly as signed and
``bundles/<id>/trust.json`` its reference and the public keys it verified against (outside the
signed folder: an extra file there would break the signature); ``approved/<task>.json`` is the
last set of approved versions seen. A cached bundle is re-verified with its recorded keys before use, and a
version the registry no longer approves is deleted from the cache.

Several processes share one cache (``gsco-hub serve --workers N``): every file is written under a
name of its own and renamed into place, and each process stages downloads in a folder of its own
(``staging/<pid>-<random>/``), so that one process's clean-up never removes another's download.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from gsco_common.processes import pid_alive
from gsco_runtime.pool.source import BundleRef, TrustRecord

TRUST_FILE = "trust.json"
# Renames into place tried while other processes keep replacing the same entry.
_STORE_ATTEMPTS = 20


def _bundle_id(ref: BundleRef) -> str:
    return hashlib.sha256(f"{ref.task_id}|{ref.key}".encode()).hexdigest()[:24]


class BundleCache:
    """Verified bundle copies plus the last approved set per task."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "bundles").mkdir(parents=True, exist_ok=True)
        (root / "approved").mkdir(parents=True, exist_ok=True)
        self._staging = root / "staging" / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        _remove_staging_of_ended_processes(root / "staging")

    def _entry(self, ref: BundleRef) -> Path:
        return self.root / "bundles" / _bundle_id(ref)

    def path(self, ref: BundleRef) -> Path:
        """The cached bundle folder of ``ref`` (whether or not it exists)."""
        return self._entry(ref) / "bundle"

    def staging_dir(self) -> Path:
        """A fresh empty folder on the cache's file system (for downloads before verification)."""
        folder = self._staging / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def store(self, ref: BundleRef, verified_dir: Path, trust: TrustRecord) -> Path:
        """Move a verified bundle folder into the cache (atomic rename) and return its new path."""
        staged = self.staging_dir()
        verified_dir.replace(staged / "bundle")
        (staged / TRUST_FILE).write_text(
            json.dumps({"ref": ref.to_dict(), "trust": trust.__dict__, "cached_at": time.time()})
        )
        entry = self._entry(ref)
        aside = self._staging / f"replaced-{uuid.uuid4().hex}"
        try:
            entry.replace(aside)  # an older copy leaves in one rename, then goes
            shutil.rmtree(aside)
        except FileNotFoundError:
            pass  # none, or another process moved it first
        for attempt in range(_STORE_ATTEMPTS):
            try:
                staged.replace(entry)
                break
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                if entry.is_dir():
                    # Another process stored the same version meanwhile (verified like this one,
                    # and re-verified before every use): keep its copy.
                    shutil.rmtree(staged)
                    break
                # That copy was moved aside between our rename and our check: try again.
                if attempt == _STORE_ATTEMPTS - 1:
                    raise
        return self.path(ref)

    def lookup(self, ref: BundleRef) -> tuple[Path, TrustRecord] | None:
        trust_path = self._entry(ref) / TRUST_FILE
        if not trust_path.is_file():
            return None
        data = json.loads(trust_path.read_text())
        # The same version and, when both name one, the same listed bundle digest; the approval
        # record (who, when) is provenance for reports, not identity.
        stored = BundleRef.from_dict(data["ref"])
        same_digest = (
            not (stored.bundle_digest and ref.bundle_digest) or stored.bundle_digest == ref.bundle_digest
        )
        if (stored.task_id, stored.key) != (ref.task_id, ref.key) or not same_digest:
            return None
        return self.path(ref), TrustRecord(**data["trust"])

    def evict(self, ref: BundleRef) -> None:
        shutil.rmtree(self._entry(ref), ignore_errors=True)

    def remember_approved(
        self, task_id: str, refs: list[BundleRef], statement: dict[str, Any] | None = None
    ) -> None:
        """Keep the approved set of this sync and the signed statement it came from."""
        path = self.root / "approved" / f"{task_id}.json"
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}")
        record = {"synced_at": time.time(), "approved": [r.to_dict() for r in refs], "statement": statement}
        tmp.write_text(json.dumps(record))
        tmp.replace(path)

    def last_statement(self, task_id: str) -> dict[str, Any] | None:
        """The signed approved set of the last successful sync (unverified: the source checks it)."""
        path = self.root / "approved" / f"{task_id}.json"
        if not path.is_file():
            return None
        return json.loads(path.read_text()).get("statement")

    def last_approved(self, task_id: str) -> tuple[list[BundleRef], float | None]:
        """The approved set of the last successful sync, and when that sync happened."""
        path = self.root / "approved" / f"{task_id}.json"
        if not path.is_file():
            return [], None
        data = json.loads(path.read_text())
        return [BundleRef.from_dict(r) for r in data["approved"]], float(data["synced_at"])

    def clear_staging(self) -> None:
        """Remove this process's leftover downloads (never another process's)."""
        shutil.rmtree(self._staging, ignore_errors=True)


def _remove_staging_of_ended_processes(staging: Path) -> None:
    """Staging folders left by processes that ended (a crash mid-download) are removed."""
    for folder in staging.glob("*-*"):
        pid = folder.name.split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)

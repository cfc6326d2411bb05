"""One bundle cache shared by several hub processes (`gsco-hub serve --workers N`)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from gsco_runtime.pool.cache import TRUST_FILE, BundleCache
from gsco_runtime.pool.source import BundleRef, TrustRecord

REF = BundleRef("task", "task.m.site", "1")
TRUST = TrustRecord("site-pem", "approval-pem")


def _in_threads(work, count: int = 2) -> list[BaseException]:
    """Run ``work(i)`` in ``count`` threads at once; the exceptions they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(index: int) -> None:
        start.wait()
        try:
            work(index)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_one_process_cleaning_up_never_removes_another_process_download(tmp_path: Path) -> None:
    first, second = BundleCache(tmp_path), BundleCache(tmp_path)
    downloading = first.staging_dir()
    (downloading / "model.onnx").write_bytes(b"partial")
    second.clear_staging()
    assert (downloading / "model.onnx").read_bytes() == b"partial"
    first.clear_staging()
    assert not downloading.exists()


def test_staging_left_by_an_ended_process_is_removed_when_a_cache_opens(tmp_path: Path) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    left = tmp_path / "staging" / f"{ended.stdout.strip()}-0123456789ab" / "x"
    left.mkdir(parents=True)
    running = BundleCache(tmp_path).staging_dir()
    BundleCache(tmp_path)
    assert not left.parent.exists()
    assert running.is_dir()  # this process is alive: its download stays


def test_processes_writing_the_approved_set_at_once_all_succeed(tmp_path: Path) -> None:
    caches = [BundleCache(tmp_path), BundleCache(tmp_path)]
    refs = [REF]

    def write(index: int) -> None:
        for _ in range(300):
            caches[index].remember_approved("task", refs, {"index": index})

    assert _in_threads(write) == []
    assert caches[0].last_approved("task")[0] == refs
    assert [p.name for p in (tmp_path / "approved").iterdir()] == ["task.json"]


def test_processes_storing_the_same_version_at_once_keep_one_verified_copy(tmp_path: Path) -> None:
    # Three writers: one's rename can fail on another's copy that a third moves aside before the
    # check (the old code then raised in nearly every run of this test).
    caches = [BundleCache(tmp_path) for _ in range(3)]

    def store(index: int) -> None:
        for _ in range(500):
            verified = caches[index].staging_dir() / "download"
            verified.mkdir()
            (verified / "model.onnx").write_bytes(b"weights")
            caches[index].store(REF, verified, TRUST)

    assert _in_threads(store, count=3) == []
    folder, trust = caches[1].lookup(REF)
    assert (folder / "model.onnx").read_bytes() == b"weights" and trust == TRUST
    assert sorted(p.name for p in folder.parent.iterdir()) == ["bundle", TRUST_FILE]

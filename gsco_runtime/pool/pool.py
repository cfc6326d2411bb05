"""The specialist pool: watches the registry and keeps every approved, verified version loaded.

Each sync (every ``poll_interval_s`` and on :meth:`SpecialistPool.refresh`) asks the registry for
the task's approved and revoked versions. New versions are downloaded, verified (site and
approval signatures), cached, loaded into onnxruntime, warmed up and prepared (retrieval index),
then the task's :class:`PoolSnapshot` is replaced in one assignment. A request takes a snapshot
once and finishes on those sessions, whatever happens to the pool meanwhile. A version that fails
to load is reported and the version it would have replaced keeps serving; revoked versions and
versions no longer approved (with no failed replacement) leave the pool and the cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gsco_common.errors import (
    GscoError,
    NotFoundError,
    RegistryError,
    RegistryUnavailableError,
    RuntimeServiceError,
    SignatureError,
)
from gsco_runtime.pool.cache import BundleCache
from gsco_runtime.pool.card import read_specialist_info
from gsco_runtime.pool.poller import Poller
from gsco_runtime.pool.source import BundleRef, BundleSource, TaskState
from gsco_runtime.pool.specialist import LoadedSpecialist
from gsco_runtime.pool.threads import ThreadBudget
from registry.bundle.layout import MODEL_FILE

log = logging.getLogger(__name__)
MAX_FAILURES_KEPT = 50


@dataclass(frozen=True)
class BatchSettings:
    """Micro-batching of concurrent requests per specialist."""

    max_batch: int = 16
    max_wait_s: float = 0.002


@dataclass(frozen=True)
class PoolSnapshot:
    """The specialists of one task at one moment (never mutated)."""

    task_id: str
    specialists: tuple[LoadedSpecialist, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(s.info.key for s in self.specialists)


@dataclass(frozen=True)
class LoadFailure:
    """A version that could not be loaded, with the error code and plain message."""

    task_id: str
    key: str
    code: str
    message: str
    at: float


@dataclass
class PoolStatus:
    """What the pool serves and whether it is in touch with the registry."""

    registry_reachable: bool | None
    serving_from_cache: bool
    last_sync_at: float | None
    last_error: str | None
    tasks: dict[str, list[str]]
    failures: list[LoadFailure] = field(default_factory=list)
    load_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class InflightCounter:
    """Number of requests currently inside the runtime (the micro-batchers' expected demand)."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def __enter__(self) -> InflightCounter:
        with self._lock:
            self._value += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._value -= 1

    @property
    def value(self) -> int:
        return self._value


class SpecialistPool:
    """Approved specialists per task, kept in sync with the registry."""

    def __init__(
        self,
        source: BundleSource,
        cache: BundleCache,
        *,
        poll_interval_s: float = 10.0,
        batching: BatchSettings | None = None,
        budget: ThreadBudget | None = None,
        on_loaded: Callable[[LoadedSpecialist], None] | None = None,
        on_swap: Callable[[PoolSnapshot], None] | None = None,
    ) -> None:
        self.source = source
        self.cache = cache
        self.poll_interval_s = poll_interval_s
        self.batching = batching or BatchSettings()
        self.budget = budget or ThreadBudget()
        self.inflight = InflightCounter()
        self._on_loaded = on_loaded
        self._on_swap = on_swap
        self._snapshots: dict[str, PoolSnapshot] = {}
        self._tasks: set[str] = set()
        self._sync_lock = threading.Lock()
        self._poller = Poller(self.refresh, poll_interval_s, "gsco-pool-poll")
        self._failures: list[LoadFailure] = []
        self._reachable: bool | None = None
        self._from_cache = False
        self._last_sync: float | None = None
        self._last_error: str | None = None
        self._load_seconds: dict[str, float] = {}
        self._unregistered: set[str] = set()  # watched tasks the registry said it does not know

    def watch(self, task_ids: Iterable[str]) -> None:
        """Serve these tasks (synced immediately)."""
        new = set(task_ids) - self._tasks
        self._tasks |= new
        if new:
            self.refresh()

    def start(self) -> None:
        """Start the background poll thread (idempotent)."""
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()

    def refresh(self) -> PoolStatus:
        """Sync every watched task now (the push-notification entry point); returns the status."""
        with self._sync_lock:
            for task_id in sorted(self._tasks):
                self._sync(task_id)
            self.cache.clear_staging()
        return self.status()

    def snapshot(self, task_id: str) -> PoolSnapshot:
        """The task's current specialists; watches the task first if needed."""
        if task_id not in self._tasks:
            self.watch([task_id])
        snap = self._snapshots.get(task_id)
        if task_id in self._unregistered:
            raise NotFoundError(
                f"the registry has no task {task_id!r}", hint="`gsco-registry tasks list` shows its tasks"
            )
        if snap is None or not snap.specialists:
            hint = (
                "the registry is unreachable and no verified copy is cached"
                if self._reachable is False
                else "approve a version with `gsco-registry approve`"
            )
            raise RuntimeServiceError(f"no approved specialist is loaded for task {task_id!r}", hint=hint)
        return snap

    def status(self) -> PoolStatus:
        return PoolStatus(
            registry_reachable=self._reachable,
            serving_from_cache=self._from_cache,
            last_sync_at=self._last_sync,
            last_error=self._last_error,
            tasks={task: list(snap.keys) for task, snap in sorted(self._snapshots.items())},
            failures=list(self._failures),
            load_seconds=dict(self._load_seconds),
        )

    def _sync(self, task_id: str) -> None:
        try:
            state = self.source.task_state(task_id)
        except RegistryError as exc:  # unreachable, credentials refused, not initialised
            self._reachable = False
            self._last_error = exc.message
            if task_id not in self._snapshots:
                self._serve_from_cache(task_id)
            return
        self._reachable = True
        self._from_cache = False
        self._last_sync = time.time()
        self._last_error = None
        self.cache.remember_approved(task_id, list(state.approved), state.statement)
        if state.registered:
            self._unregistered.discard(task_id)
        else:
            self._unregistered.add(task_id)
        self._apply(task_id, state)

    def _serve_from_cache(self, task_id: str) -> None:
        """Serve what the cached signed statement lists (verified with the pinned key, no rollback)."""
        _, synced_at = self.cache.last_approved(task_id)
        try:
            refs: tuple[BundleRef, ...] = self.source.admit_cached(
                task_id, self.cache.last_statement(task_id)
            )
        except RegistryError as exc:
            self._last_error = exc.message
            refs = ()
        self._from_cache = True
        self._last_sync = synced_at
        loaded = [s for s in (self._load(ref, offline=True) for ref in refs) if s is not None]
        self._swap(PoolSnapshot(task_id, tuple(loaded)))

    def _apply(self, task_id: str, state: TaskState) -> None:
        current = {s.info.key: s for s in self._snapshots.get(task_id, PoolSnapshot(task_id, ())).specialists}
        approved = {ref.key: ref for ref in state.approved}
        withdrawn = {
            key
            for key, s in current.items()
            if state.withdrawn(s.info.model_digest, s.info.model_content_digest, s.info.site_fingerprint)
        }
        loaded = {key: current[key] for key in approved if key in current and key not in withdrawn}
        failed_names: set[str] = set()
        for key, ref in approved.items():
            if key not in loaded:
                specialist = self._load(ref, offline=False)
                if specialist is None:
                    failed_names.add(ref.name)
                else:
                    loaded[key] = specialist
        for key, specialist in current.items():
            keep_previous = specialist.info.name in failed_names and key not in withdrawn
            if key not in approved and keep_previous:
                loaded[key] = specialist
        ordered = tuple(loaded[key] for key in sorted(loaded))
        if tuple(sorted(loaded)) != tuple(sorted(current)):
            self._swap(PoolSnapshot(task_id, ordered))
        for key, specialist in current.items():
            if key not in loaded:
                log.info("specialist %s left the pool of task %s", key, task_id)
                self.cache.evict(BundleRef(task_id, specialist.info.name, specialist.info.version))

    def _swap(self, snapshot: PoolSnapshot) -> None:
        """Publish the task's new snapshot (one assignment), then let the owner warm up for it.

        The owner hears of every swap, also to an empty pool, so that it can free what the
        specialists that left (revoked, replaced) held.
        """
        self._snapshots[snapshot.task_id] = snapshot
        if self._on_swap is not None:
            self._on_swap(snapshot)

    def _load(self, ref: BundleRef, *, offline: bool) -> LoadedSpecialist | None:
        """Obtain, load and warm up one version; None (and a report) when anything fails."""
        start = time.perf_counter()
        try:
            folder = self._obtain(ref, offline=offline)
            specialist = LoadedSpecialist.load(
                folder / MODEL_FILE,
                read_specialist_info(ref, folder),
                self.budget,
                max_batch=self.batching.max_batch,
                max_wait_s=self.batching.max_wait_s,
                demand=lambda: self.inflight.value,
            )
            if self._on_loaded is not None:
                self._on_loaded(specialist)
        except GscoError as exc:
            self._report(ref, exc)
            return None
        self._load_seconds[ref.key] = round(time.perf_counter() - start, 3)
        log.info("specialist %s loaded for task %s", ref.key, ref.task_id)
        return specialist

    def _obtain(self, ref: BundleRef, *, offline: bool) -> Path:
        """A verified bundle folder: the cached copy if it still verifies, else a fresh download."""
        cached = self.cache.lookup(ref)
        if cached is not None:
            folder, trust = cached
            try:
                self.source.verify_cached(folder, trust, ref)
                return folder
            except SignatureError:
                if offline:  # kept: the registry may vouch for a fresh copy once it is back
                    raise
                self.cache.evict(ref)
        if offline:
            raise RegistryUnavailableError(f"version {ref.key} is not in the local cache")
        staging = self.cache.staging_dir()
        self.source.fetch(ref, staging)
        trust = self.source.verify(ref, staging)
        return self.cache.store(ref, staging, trust)

    def _report(self, ref: BundleRef, exc: GscoError) -> None:
        """Record a failed load (a repeat of the same failure only refreshes its time)."""
        failure = LoadFailure(ref.task_id, ref.key, exc.code, exc.message, time.time())
        log.warning("specialist %s not loaded: %s (%s)", ref.key, exc.message, exc.code)
        same = (failure.task_id, failure.key, failure.code, failure.message)
        kept = [f for f in self._failures if (f.task_id, f.key, f.code, f.message) != same]
        self._failures = [*kept[-(MAX_FAILURES_KEPT - 1) :], failure]

"""The warm runtime of one service process, and what the routes ask of it.

One :class:`ServiceRuntime` per worker process: it owns a :class:`GscoRuntime` (pool, RAD indexes,
arbiter), the list of served tasks (the registry's tasks unless the settings name some), and one
background thread that re-reads the tasks and re-syncs the pool every ``poll_interval_s``.
``POST /v1/admin/refresh`` and the webhook call :meth:`refresh` directly. The pool's verified atomic
swap does the rest: a request finishes on the snapshot it started with; revoked versions leave the
pool (and their in-memory retrieval indexes are freed) on the next sync.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gsco_common.errors import NotFoundError, RegistryError
from gsco_runtime.config import load_runtime_settings
from gsco_runtime.engine import GscoRuntime
from gsco_runtime.generalists import create_backend
from gsco_runtime.pool.poller import Poller
from gsco_runtime.pool.registry_source import RegistrySource
from hub.service.settings import ServiceSettings
from registry.pinning import read_central_key_file
from registry.service import Registry
from registry.store.catalog import TaskInfo

log = logging.getLogger(__name__)
GENERALIST_KEY_ENV = "GSCO_GENERALIST_API_KEY"


@dataclass(frozen=True)
class Readiness:
    ready: bool
    status: str
    reason: str | None


class ServiceRuntime:
    """Serves the tasks' approved specialists and keeps them in sync with the registry."""

    def __init__(self, settings: ServiceSettings, on_swap: Callable[[], None]) -> None:
        self.settings = settings
        generalist = (
            create_backend(
                "openai",
                base_url=settings.generalist_url,
                model=settings.generalist_model,
                api_key=os.environ.get(GENERALIST_KEY_ENV),
                timeout_s=60.0,
                max_retries=1,
                max_tokens=512,
            )
            if settings.generalist_url
            else None
        )
        runtime_settings = load_runtime_settings(
            settings.home, {"threads": settings.threads, "poll_interval_s": settings.poll_interval_s}
        )
        self.engine = GscoRuntime(
            RegistrySource(settings.registry, central_key_pem=read_central_key_file(settings.central_key)),
            runtime_settings,
            generalist=generalist,
        )
        self._on_swap = on_swap
        self._tasks: dict[str, TaskInfo] = {}
        self._registry: Registry | None = None
        self._lock = threading.Lock()
        self._poller = Poller(self.refresh, settings.poll_interval_s, "gsco-hub-poll")

    def start(self) -> None:
        """Load every served task now, then keep polling in the background."""
        self.refresh()
        self._poller.start()

    def close(self) -> None:
        self._poller.stop()
        if self._registry is not None:
            self._registry.close()
        self.engine.close()

    def _read_tasks(self) -> None:
        """The registry's tasks (kept as they were when the registry cannot be reached)."""
        try:
            if self._registry is None:
                self._registry = Registry.open(self.settings.registry)
            tasks = {t.task_id: t for t in self._registry.tasks()}
        except RegistryError as exc:
            log.warning("registry tasks not read: %s (%s)", exc.message, exc.code)
            if self._registry is not None:
                self._registry.close()
                self._registry = None
            return
        wanted = self.settings.tasks
        self._tasks = {k: v for k, v in tasks.items() if wanted is None or k in wanted}

    def refresh(self) -> dict[str, list[str]]:
        """Re-read tasks and sync the pool now; returns the models serving per task."""
        with self._lock:
            before = self.engine.pool.status().tasks
            self._read_tasks()
            self.engine.pool.watch(sorted(set(self._tasks) | set(self.settings.tasks or ())))
            after = self.engine.pool.refresh().tasks
            self._tasks_from_cache(after)
            for task_id in self.engine.refresh_case_libraries():
                log.info("the case library of task %s changed: it is read again on the next request", task_id)
        changed = sum(1 for task in set(before) | set(after) if before.get(task) != after.get(task))
        for _ in range(changed):
            self._on_swap()
        return after

    def _tasks_from_cache(self, serving: dict[str, list[str]]) -> None:
        """Named tasks the registry could not describe, from the cached specialists' cards.

        This is what lets a hub started while the registry is down serve its verified cache.
        """
        for task_id in self.settings.tasks or ():
            if task_id not in self._tasks and serving.get(task_id):
                spec = self.engine.task_spec(self.engine.pool.snapshot(task_id))
                self._tasks[task_id] = TaskInfo(task_id, tuple(spec.label_names), spec.modality)

    def task(self, task_id: str) -> TaskInfo:
        """A served task, or 404."""
        info = self._tasks.get(task_id)
        if info is None:
            raise NotFoundError(f"no task {task_id!r} is served here", hint="see GET /v1/tasks")
        return info

    def tasks(self) -> list[TaskInfo]:
        return [self._tasks[k] for k in sorted(self._tasks)]

    def models_loaded(self) -> dict[str, int]:
        return {task: len(keys) for task, keys in self.engine.pool.status().tasks.items()}

    def cache_age_s(self) -> float:
        status = self.engine.pool.status()
        if not status.serving_from_cache or status.last_sync_at is None:
            return 0.0
        return max(0.0, time.time() - status.last_sync_at)

    def readiness(self) -> Readiness:
        """Ready when every served task has a model; degraded when that comes from the cache."""
        if not self._tasks:
            return Readiness(False, "not ready", "no task is served (create one with gsco-registry tasks)")
        loaded = self.models_loaded()
        empty = [task for task in self._tasks if not loaded.get(task)]
        if empty:
            return Readiness(False, "not ready", f"no approved specialist is loaded for task {empty[0]!r}")
        if self.engine.pool.status().registry_reachable is False:
            return Readiness(True, "degraded: registry unreachable", "serving verified copies from the cache")
        return Readiness(True, "ready", None)

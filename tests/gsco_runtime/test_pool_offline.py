"""A pool whose registry is unreachable, serving what a cached signed approved set lists.

No registry runs here: the approved set is a real statement signed with a central key made for
the test (``central_key``) and kept in a real :class:`BundleCache`, the source a real
:class:`RegistrySource` whose registry cannot be reached. Its versions are not in the cache, so
each one fails to load and is reported: the pool's failure list and status, without MLflow.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gsco_common.errors import RuntimeServiceError
from gsco_runtime.config import RuntimeSettings
from gsco_runtime.pool.cache import BundleCache
from gsco_runtime.pool.pool import MAX_FAILURES_KEPT, PoolSnapshot, SpecialistPool
from gsco_runtime.pool.registry_source import RegistrySource
from registry.config import RegistryConfig
from registry.serving_state import ApprovedSet, ServedVersion, sign_statement
from registry.store.database import Tables
from tests.security.conftest import DOWN_URI
from tests.unavailable_server import unavailable_server

TASK = "offline-task"
UNREACHABLE = "opening the registry: the registry is unreachable (gave up after 1 attempts)"


# The status of a pool that has not synced yet (the other tests state what changes from it).
NEW_POOL_STATUS = {
    "registry_reachable": None,
    "serving_from_cache": False,
    "last_sync_at": None,
    "last_error": None,
    "tasks": {},
    "failures": [],
    "load_seconds": {},
}


def _statement(key: ec.EllipticCurvePrivateKey, names: list[str], sequence: int = 1) -> dict[str, object]:
    """A signed approved set of ``TASK`` listing version 1 of each model in ``names``."""
    versions = tuple(
        ServedVersion(name, "1", f"sha256:{index:064x}", "f" * 64) for index, name in enumerate(names)
    )
    return sign_statement(ApprovedSet(TASK, sequence, "2026-01-01T00:00:00+00:00", versions), key).to_dict()


def _offline_pool(
    tmp_path: Path, central_pub: bytes, statement: dict[str, object], **kwargs: Any
) -> tuple[SpecialistPool, float]:
    """An offline pool over a cache that holds ``statement``; also when that set was cached."""
    cache = BundleCache(tmp_path / "cache")
    cache.remember_approved(TASK, [], statement)
    _, synced_at = cache.last_approved(TASK)
    assert synced_at is not None
    config = RegistryConfig.resolve(home=tmp_path / "hub-home", tracking_uri=DOWN_URI, retries=0)
    source = RegistrySource(config, central_key_pem=central_pub, hub_home=tmp_path / "hub-home")
    return SpecialistPool(source, cache, **kwargs), synced_at


def test_versions_missing_from_the_cache_are_reported_and_the_status_says_so(
    tmp_path: Path, central_key: tuple[ec.EllipticCurvePrivateKey, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    key, central_pub = central_key
    pool, synced_at = _offline_pool(tmp_path, central_pub, _statement(key, ["m0", "m1"]))
    before = time.time()
    with caplog.at_level(logging.WARNING, logger="gsco_runtime.pool.pool"):
        pool.watch([TASK])
    after = time.time()
    failures = pool.status().failures
    assert [(f.task_id, f.key, f.code, f.message) for f in failures] == [
        (TASK, f"{name}/1", "GSCO-510", f"version {name}/1 is not in the local cache")
        for name in ("m0", "m1")
    ]
    assert all(before <= f.at <= after for f in failures)
    assert caplog.messages == [
        f"specialist {name}/1 not loaded: version {name}/1 is not in the local cache (GSCO-510)"
        for name in ("m0", "m1")
    ]
    assert pool.status().to_dict() == {
        **NEW_POOL_STATUS,
        "registry_reachable": False,
        "serving_from_cache": True,
        "last_sync_at": synced_at,  # when the cached set was synced, not now
        "last_error": UNREACHABLE,
        "tasks": {TASK: []},
        "failures": [f.__dict__ for f in failures],
    }


def test_a_new_pool_has_synced_nothing_yet(
    tmp_path: Path, central_key: tuple[ec.EllipticCurvePrivateKey, bytes]
) -> None:
    key, central_pub = central_key
    pool, _ = _offline_pool(tmp_path, central_pub, _statement(key, ["m0"]))
    assert (
        pool.poll_interval_s == RuntimeSettings(home=tmp_path).poll_interval_s == 10.0
    )  # documented default
    assert pool.status().to_dict() == NEW_POOL_STATUS


def test_nothing_to_serve_offline_says_why(
    tmp_path: Path, central_key: tuple[ec.EllipticCurvePrivateKey, bytes]
) -> None:
    key, central_pub = central_key
    pool, _ = _offline_pool(tmp_path, central_pub, _statement(key, ["m0"]))
    with pytest.raises(RuntimeServiceError) as refused:
        pool.snapshot(TASK)  # watches the task first
    assert refused.value.message == f"no approved specialist is loaded for task {TASK!r}"
    assert refused.value.hint == "the registry is unreachable and no verified copy is cached"


def test_only_the_newest_failures_are_kept(
    tmp_path: Path, central_key: tuple[ec.EllipticCurvePrivateKey, bytes]
) -> None:
    key, central_pub = central_key
    names = [f"m{index:02d}" for index in range(MAX_FAILURES_KEPT + 10)]
    pool, _ = _offline_pool(tmp_path, central_pub, _statement(key, names))
    pool.watch([TASK])
    assert [f.key for f in pool.status().failures] == [f"{name}/1" for name in names[10:]]


def test_an_approved_set_edited_in_the_cache_is_refused(
    tmp_path: Path, central_key: tuple[ec.EllipticCurvePrivateKey, bytes]
) -> None:
    key, central_pub = central_key
    statement = _statement(key, ["m0"])
    statement["statement"]["sequence"] = 2  # type: ignore[index]
    swaps: list[PoolSnapshot] = []
    pool, _ = _offline_pool(tmp_path, central_pub, statement, on_swap=swaps.append)
    pool.watch([TASK])
    assert swaps == [PoolSnapshot(TASK, ())]  # the owner hears of a swap to an empty pool too
    status = pool.status()
    assert status.tasks == {TASK: []} and status.failures == []
    assert status.last_error == (
        f"the approved set of task {TASK!r} (statement 2) is not signed by the pinned central key"
    )


def test_a_tracking_server_that_stops_answering_is_unreachable_at_every_poll(
    tmp_path: Path, central_key: tuple[ec.EllipticCurvePrivateKey, bytes]
) -> None:
    """The registry opens (its server is configured), then its ping fails: for each task at each poll."""
    central_pub = central_key[1]
    tables = f"sqlite:///{tmp_path / 'tables.db'}"
    Tables(tables, create=True).dispose()  # the registry's own tables answer; its MLflow server does not
    with unavailable_server() as server:
        config = RegistryConfig.resolve(
            home=tmp_path / "hub-home", tracking_uri=server.url, db_uri=tables, retries=0
        )
        source = RegistrySource(config, central_key_pem=central_pub, hub_home=tmp_path / "hub-home")
        pool = SpecialistPool(source, BundleCache(tmp_path / "cache"))
        pool.watch([TASK])
        first = pool.status().last_error
        pool.watch(["another-task"])  # synced at once, together with the task already watched
        second = pool.refresh().last_error
        source.close()  # after an unreachable poll too
    assert first == second == "reaching the model registry: the registry cannot be reached"
    # one ping per task and sync: the first task alone, then both tasks twice
    assert server.received == ["GET /api/2.0/mlflow/registered-models/search"] * 5

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gsco_common.errors import NotFoundError, RuntimeServiceError, SignatureError
from gsco_runtime.pool.cache import BundleCache
from gsco_runtime.pool.pool import BatchSettings, PoolSnapshot, SpecialistPool
from gsco_runtime.pool.registry_source import RegistrySource
from gsco_runtime.pool.source import BundleRef, TrustRecord
from gsco_runtime.pool.specialist import LoadedSpecialist
from registry.config import RegistryConfig
from registry.service import Registry
from tests.gsco_runtime.world import World
from tests.site_bundle import SiteBundle, publish_real

UNREACHABLE = RegistryConfig.resolve(tracking_uri="postgresql+psycopg2://hub@127.0.0.1:9/mlflow", retries=0)


def _pool(world: World, cache: Path, **kwargs: object) -> SpecialistPool:
    return SpecialistPool(RegistrySource(world.config), BundleCache(cache), **kwargs)  # type: ignore[arg-type]


def _artifact(world: World, name: str, version: str, file: str) -> Path:
    with Registry.open(world.config) as registry:
        run_id = registry.version(name, version).run_id
    matches = list((world.config.home / "artifacts").rglob(f"{run_id}/artifacts/bundle/{file}"))
    assert len(matches) == 1
    return matches[0]


def _pool_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "gsco_runtime.pool.pool"]


def test_serves_every_approved_version_only(
    world: World, real: tuple[SiteBundle, ...], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    task = world.new_task()
    a = publish_real(world, task, real[0])
    b = publish_real(world, task, real[1])
    publish_real(world, task, real[2], approve=False)  # pending: never served
    pool = _pool(world, tmp_path / "cache")
    before = time.time()
    with caplog.at_level(logging.INFO, logger="gsco_runtime.pool.pool"):
        caplog.clear()  # only the watch's records (see test_revoked_version_leaves_the_pool_and_the_cache)
        pool.watch([task])
    elapsed = time.time() - before
    snapshot = pool.snapshot(task)
    assert sorted(snapshot.keys) == sorted([f"{a[0]}/{a[1]}", f"{b[0]}/{b[1]}"])
    info = {s.info.name: s.info for s in snapshot.specialists}
    assert info[a[0]].site_fingerprint == world.sites["real-1"].fingerprint == real[0].report.key_fingerprint
    measured = real[0].card["evaluation"]["metrics"]["balanced_accuracy"]["value"]  # by the site's export
    assert measured == real[0].report.metrics["balanced_accuracy"]
    assert info[a[0]].validation["balanced_accuracy"] == measured
    with Registry.open(world.config) as registry:  # who approved each version and when, for reports
        for name, version in (a, b):
            assert (info[name].approved_by, info[name].approved_at) == registry.approval_record(name, version)
            assert info[name].approved_by == "tester" and info[name].approved_at.startswith("20")
    status = pool.status()
    assert status.registry_reachable is True and status.serving_from_cache is False
    assert status.last_error is None and status.last_sync_at is not None
    assert before <= status.last_sync_at <= before + elapsed
    assert status.failures == [] and set(status.load_seconds) == set(snapshot.keys)
    for seconds in status.load_seconds.values():  # each load's own time, in milliseconds
        assert isinstance(seconds, float) and 0 < seconds <= elapsed and round(seconds, 3) == seconds
    assert sorted(_pool_log(caplog)) == sorted(
        f"specialist {key} loaded for task {task}" for key in snapshot.keys
    )


def test_loaded_specialists_batch_as_the_pool_is_told(
    world: World, real: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    task = world.new_task()
    name, version = publish_real(world, task, real[0])
    loaded: list[LoadedSpecialist] = []
    swaps: list[PoolSnapshot] = []
    batching = BatchSettings(max_batch=3, max_wait_s=900.0)  # longer than the test's timeout
    pool = _pool(world, tmp_path / "cache", batching=batching, on_loaded=loaded.append, on_swap=swaps.append)
    pool.watch([task])
    (specialist,) = pool.snapshot(task).specialists
    assert loaded == [specialist] and swaps == [pool.snapshot(task)]  # the owner prepares, then swaps
    assert specialist.info.key == f"{name}/{version}"
    assert (specialist.batcher.max_batch, specialist.batcher.max_wait_s) == (3, 900.0)
    results: list[np.ndarray] = []

    def one_request() -> None:
        with pool.inflight:  # the only request inside the runtime: its image waits for no other
            results.append(specialist.predict(np.zeros((28, 28), np.uint8))[0])

    request = threading.Thread(target=one_request, daemon=True)
    request.start()
    request.join(timeout=120)  # a batcher blind to the in-flight count would wait out max_wait_s
    assert not request.is_alive()
    assert results[0].shape == (2,)


def test_revoked_version_leaves_the_pool_and_the_cache(
    own_world: World, real: tuple[SiteBundle, ...], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = own_world  # revokes a real specialist: not in the session registry
    task = world.new_task()
    keep = publish_real(world, task, real[0])
    gone = publish_real(world, task, real[1])
    cache = BundleCache(tmp_path / "cache")
    pool = SpecialistPool(RegistrySource(world.config), cache)
    pool.watch([task])
    held = pool.snapshot(task)
    world.revoke(*gone)
    with caplog.at_level(logging.INFO, logger="gsco_runtime.pool.pool"):
        # caplog keeps every record of the test: the watch's "loaded" lines are there too when an
        # earlier test in this process left the root logger at INFO or below
        caplog.clear()
        pool.refresh()
    assert pool.snapshot(task).keys == (f"{keep[0]}/{keep[1]}",)
    assert _pool_log(caplog) == [f"specialist {gone[0]}/{gone[1]} left the pool of task {task}"]
    assert cache.lookup(BundleRef(task, gone[0], gone[1])) is None
    # a request that took the old snapshot still runs on the revoked version's session
    revoked = next(s for s in held.specialists if s.info.name == gone[0])
    assert revoked.info.model_uid == real[1].report.model_uid
    assert revoked.predict(np.zeros((28, 28), "uint8"))[0].shape == (2,)


def test_failed_load_keeps_the_previous_version_and_is_reported(
    world: World, real: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    # Two versions of one model (same site and backbone, other weights): real-1 publishes its
    # own specialist, then real-2's as its next version.
    task = world.new_task()
    name, v1 = publish_real(world, task, real[0])
    pool = _pool(world, tmp_path / "cache")
    pool.watch([task])
    _, v2 = publish_real(world, task, real[1], site="real-1")  # same model name: alias moves to v2
    model = _artifact(world, name, v2, "model.onnx")
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a corrupted file after approval: signatures no longer verify
    model.write_bytes(bytes(data))
    other = publish_real(world, task, real[2])  # another model, approved meanwhile: the pool swaps
    pool.refresh()
    assert pool.snapshot(task).keys == tuple(sorted([f"{name}/{v1}", f"{other[0]}/{other[1]}"]))
    assert {s.info.name: s.info.version for s in pool.snapshot(task).specialists}[name] == v1
    failure = pool.status().failures[-1]
    assert failure.key == f"{name}/{v2}" and failure.code == "GSCO-410"
    assert "does not verify" in failure.message
    pool.refresh()  # the same failure again: reported once, at its latest time
    (again,) = pool.status().failures
    assert (again.task_id, again.key, again.message) == (task, failure.key, failure.message)
    assert again.at > failure.at


def test_a_revoked_version_is_not_kept_when_its_replacement_fails(
    own_world: World, real: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    world = own_world  # revokes a real specialist: not in the session registry
    task = world.new_task()
    name, v1 = publish_real(world, task, real[0])
    pool = _pool(world, tmp_path / "cache")
    pool.watch([task])
    _, v2 = publish_real(world, task, real[1], site="real-1")  # the next version of the same model
    model = _artifact(world, name, v2, "model.onnx")
    model.write_bytes(model.read_bytes()[:-1])  # and it fails to load
    world.revoke(name, v1)
    status = pool.refresh()
    assert status.tasks == {task: []}  # no fallback to the revoked version
    assert [failure.key for failure in status.failures] == [f"{name}/{v2}"]


def test_starts_and_serves_from_cache_when_the_registry_is_unreachable(
    world: World, real: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    task = world.new_task()
    a = publish_real(world, task, real[0])
    _pool(world, tmp_path / "cache").watch([task])  # fills the cache

    offline = SpecialistPool(
        RegistrySource(
            UNREACHABLE,
            central_key_pem=world.config.approval_pub_path.read_bytes(),
            hub_home=tmp_path / "hub",
        ),
        BundleCache(tmp_path / "cache"),
    )
    offline.watch([task])
    assert offline.snapshot(task).keys == (f"{a[0]}/{a[1]}",)
    status = offline.status()
    assert status.registry_reachable is False and status.serving_from_cache is True
    assert "unreachable" in (status.last_error or "")
    status = offline.refresh()  # the next poll tries the registry again and keeps serving the cache
    assert status.tasks == {task: [f"{a[0]}/{a[1]}"]}
    assert status.registry_reachable is False and "unreachable" in (status.last_error or "")


def test_tampered_cache_is_not_served_offline(
    world: World, real: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    task = world.new_task()
    a = publish_real(world, task, real[0])
    cache = BundleCache(tmp_path / "cache")
    SpecialistPool(RegistrySource(world.config), cache).watch([task])
    card = cache.path(BundleRef(task, *a)) / "card.json"
    assert '"chest X-ray"' in card.read_text()
    card.write_text(card.read_text().replace("chest X-ray", "chest x-ray"))
    offline = SpecialistPool(
        RegistrySource(
            UNREACHABLE,
            central_key_pem=world.config.approval_pub_path.read_bytes(),
            hub_home=tmp_path / "hub",
        ),
        cache,
    )
    offline.watch([task])
    with pytest.raises(RuntimeServiceError, match="no approved specialist"):
        offline.snapshot(task)
    assert offline.status().failures[-1].code == "GSCO-410"


def test_poll_thread_picks_up_a_new_approval(
    world: World, real: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    task = world.new_task()
    publish_real(world, task, real[0])
    pending = publish_real(world, task, real[1], approve=False)
    pool = _pool(world, tmp_path / "cache", poll_interval_s=0.2)
    pool.watch([task])
    pool.start()
    try:
        assert "gsco-pool-poll" in {thread.name for thread in threading.enumerate()}
        world.approve(*pending)
        deadline = time.monotonic() + 60
        while f"{pending[0]}/{pending[1]}" not in pool.snapshot(task).keys and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"{pending[0]}/{pending[1]}" in pool.snapshot(task).keys
    finally:
        pool.stop()


def test_a_bundle_listed_under_another_task_is_refused(
    world: World, real: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    task = world.new_task()
    publish_real(world, task, real[0])
    source = RegistrySource(world.config, hub_home=tmp_path / "hub-home")
    (ref,) = source.task_state(task).approved
    source.fetch(ref, tmp_path / "bundle")
    assert source.verify(ref, tmp_path / "bundle") == TrustRecord(
        site_public_pem=real[0].public_key.decode("ascii"),
        approval_public_pem=world.config.approval_pub_path.read_text(),
    )
    elsewhere = replace(ref, task_id="another-task")
    with pytest.raises(SignatureError) as refused:
        source.verify(elsewhere, tmp_path / "bundle")
    assert refused.value.message == f"{ref.key} is listed under task 'another-task'; its card names another"


def test_a_task_the_registry_does_not_know_is_named_so_not_sent_to_approve(
    world: World, tmp_path: Path
) -> None:
    pool = _pool(world, tmp_path / "cache")
    with pytest.raises(NotFoundError) as refused:
        pool.snapshot("no-such-task")
    assert refused.value.message == "the registry has no task 'no-such-task'"
    assert refused.value.hint == "`gsco-registry tasks list` shows its tasks"
    # created afterwards: the next sync knows it, and the hint becomes the approval one
    late = f"late-task-{tmp_path.name}"
    with pytest.raises(NotFoundError):
        pool.snapshot(late)
    task = world.new_task(task_id=late)
    pool.refresh()
    with pytest.raises(RuntimeServiceError) as waiting:
        pool.snapshot(task)
    assert waiting.value.hint == "approve a version with `gsco-registry approve`"


def test_a_registered_task_without_an_approved_version_says_to_approve_one(
    world: World, tmp_path: Path
) -> None:
    pool = _pool(world, tmp_path / "cache")
    task = world.new_task()
    with pytest.raises(RuntimeServiceError) as refused:
        pool.snapshot(task)
    assert refused.value.message == f"no approved specialist is loaded for task {task!r}"
    assert refused.value.hint == "approve a version with `gsco-registry approve`"


def test_versions_of_a_revoked_site_leave_the_pool(
    world: World, real: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    world.enroll("site-x")  # revoked below for the whole session registry: no real site may be it
    # site-x re-signs and publishes a real specialist (a site revocation does not revoke the model)
    task = world.new_task()
    keep = publish_real(world, task, real[0])
    publish_real(world, task, real[1], site="site-x")
    pool = _pool(world, tmp_path / "cache")
    pool.watch([task])
    assert len(pool.snapshot(task).keys) == 2
    with Registry.open(world.config) as registry:
        registry.revoke_site("site-x", reason="key compromised")
    pool.refresh()
    assert pool.snapshot(task).keys == (f"{keep[0]}/{keep[1]}",)
    assert "not enrolled or was revoked" in pool.status().failures[-1].message

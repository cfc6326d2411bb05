"""Attack: write the hub's bundle cache (model + trust.json naming the attacker's keys) while the
registry is unreachable. Defence: approvals verify only against the pinned central key.
The victim serves a real specialist; the attacker injects another real one, re-signed by a site
of the attacker's own registry and approved there (``tests/site_bundle.py``)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bench.world import World
from gsco_common.errors import KeyMaterialError, ServingStateError
from gsco_runtime.pool.cache import TRUST_FILE, BundleCache
from gsco_runtime.pool.pool import SpecialistPool
from gsco_runtime.pool.registry_source import RegistrySource
from gsco_runtime.pool.source import BundleRef
from registry.config import RegistryConfig
from registry.pinning import pinned_central_key
from tests.site_bundle import SiteBundle, publish_real


def _inject(
    attacker: World, specialist: SiteBundle, task: str, victim_cache: BundleCache, tmp_path: Path
) -> BundleRef:
    """The attacker approves a model in their own registry and copies it into the victim's cache."""
    with attacker.registry() as registry:
        registry.create_task(task, ("normal", "pneumonia"), "chest X-ray")
    name, version = publish_real(attacker, task, specialist, site="site-b")
    evil_cache = BundleCache(tmp_path / "evil-cache")
    SpecialistPool(RegistrySource(attacker.config), evil_cache).watch([task])
    ref = BundleRef(task, name, version, attacker.sites["site-b"].fingerprint)
    entry = evil_cache.path(ref).parent
    shutil.copytree(entry, victim_cache.path(ref).parent)
    refs, _ = victim_cache.last_approved(task)
    victim_cache.remember_approved(task, [*refs, ref], victim_cache.last_statement(task))
    return ref


def test_cache_with_foreign_trust_material_is_refused(
    world: World,
    attacker: World,
    real_specialists: tuple[SiteBundle, ...],
    offline_hub: RegistryConfig,
    tmp_path: Path,
) -> None:
    task = world.new_task()
    good = publish_real(world, task, real_specialists[0])
    cache = BundleCache(tmp_path / "cache")
    SpecialistPool(RegistrySource(world.config), cache).watch([task])
    evil = _inject(attacker, real_specialists[2], task, cache, tmp_path)

    offline = SpecialistPool(RegistrySource(offline_hub), cache)
    offline.watch([task])
    assert offline.snapshot(task).keys == (f"{good[0]}/{good[1]}",)  # the verified set keeps serving
    (served,) = offline.snapshot(task).specialists
    assert served.info.model_uid == real_specialists[0].report.model_uid
    # The injected version is not in the signed approved set the hub verified with its pinned key,
    # so the offline hub never even loads it (its trust.json is refused below, in the next test).
    assert evil.key not in {failure.key for failure in offline.status().failures}
    # refused, not deleted: the cache entry is evidence and the good entry is intact
    refs, _ = cache.last_approved(task)
    assert [r.key for r in refs] == [f"{good[0]}/{good[1]}", evil.key]
    assert all(cache.lookup(r) is not None for r in refs)


def test_trust_json_rewritten_to_the_attackers_key_is_refused(
    world: World,
    attacker: World,
    real_specialists: tuple[SiteBundle, ...],
    offline_hub: RegistryConfig,
    tmp_path: Path,
) -> None:
    task = world.new_task()
    name, version = publish_real(world, task, real_specialists[0])
    cache = BundleCache(tmp_path / "cache")
    SpecialistPool(RegistrySource(world.config), cache).watch([task])
    trust_path = cache.path(BundleRef(task, name, version)).parent / TRUST_FILE
    record = json.loads(trust_path.read_text())
    record["trust"]["approval_public_pem"] = attacker.config.approval_pub_path.read_text()
    trust_path.write_text(json.dumps(record))

    offline = SpecialistPool(RegistrySource(offline_hub), cache)
    offline.watch([task])
    assert offline.status().tasks == {task: []}
    assert offline.status().failures[-1].message == (
        "the bundle cache's trust.json names a central approval key other than the pinned one; refused"
    )


def test_an_older_approved_bundle_swapped_into_the_cache_is_refused(
    world: World, real_specialists: tuple[SiteBundle, ...], offline_hub: RegistryConfig, tmp_path: Path
) -> None:
    """Attack: replace the cached current version by an older approved one of the same model.

    Both carry valid site and approval signatures and the trust.json is left as it was; only the
    digest that the signed approved set lists tells them apart.
    """
    task = world.new_task()
    name, v1 = publish_real(world, task, real_specialists[0], site="real-1")
    _, v2 = publish_real(world, task, real_specialists[1], site="real-1")  # v2 replaces v1 in the set
    cache = BundleCache(tmp_path / "cache")
    SpecialistPool(RegistrySource(world.config), cache).watch([task])
    current = cache.path(BundleRef(task, name, v2))
    shutil.rmtree(current)
    with world.registry() as registry:
        registry.download_bundle(name, v1, current)

    offline = SpecialistPool(RegistrySource(offline_hub), cache)
    offline.watch([task])
    assert offline.status().tasks == {task: []}
    failure = offline.status().failures[-1]
    assert (failure.key, failure.code) == (f"{name}/{v2}", "GSCO-410")
    assert failure.message == f"{name}/{v2} is not the bundle the signed approved set lists (digest differs)"


def test_a_hub_pinned_to_another_central_key_refuses_the_registrys_trust_state(
    world: World, attacker: World, real_specialists: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    """The registry's signed audit checkpoints are checked with the hub's pinned key, not the registry's."""
    task = world.new_task()
    publish_real(world, task, real_specialists[0])
    pinned = attacker.config.approval_pub_path.read_bytes()
    source = RegistrySource(world.config, central_key_pem=pinned, hub_home=tmp_path / "hub-home")
    with pytest.raises(ServingStateError) as refused:
        source.task_state(task)
    assert re.fullmatch(
        r"the registry's trust state fails its audit \(\d+ problem\(s\)\): "
        r"audit checkpoint at entry \d+ is not signed by the central key",
        refused.value.message,
    )


def test_hub_without_a_pinned_key_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError, match="no pinned central approval key"):
        pinned_central_key(tmp_path / "empty-hub-home")

"""Attack: wait for the registry to go down, then rely on the hub's cache to serve a bundle of a
site the central team had revoked. Defence: while the registry is down, cached bundles are
re-verified with the trust store of the last successful read (its revoked sites and digests),
not with the site key recorded in the cache when the bundle was stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.world import World
from gsco_common.errors import RegistryUnavailableError, SignatureError
from gsco_runtime.pool.cache import BundleCache
from gsco_runtime.pool.pool import SpecialistPool
from gsco_runtime.pool.registry_source import RegistrySource
from gsco_runtime.pool.source import BundleRef
from registry.config import RegistryConfig
from tests.security.conftest import DOWN_URI
from tests.site_bundle import SiteBundle, publish_real


def test_a_site_revoked_before_an_outage_stays_refused_in_the_cache(
    own_world: World, real_specialists: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    world = own_world
    task = world.new_task()
    name, version = publish_real(world, task, real_specialists[0], site="real-2")
    cache = BundleCache(tmp_path / "cache")
    source = RegistrySource(world.config, hub_home=tmp_path / "hub-home")
    SpecialistPool(source, cache).watch([task])
    ref = BundleRef(task, name, version)
    folder, trust = cache.lookup(ref)
    source.verify_cached(folder, trust, ref)  # stored and verified while the site was trusted

    with world.registry() as registry:
        registry.revoke_site("real-2", reason="signing key stolen")
    assert world.sites["real-2"].fingerprint not in source.task_state(task).trusted_sites
    # the registry stops answering
    source.config = RegistryConfig.resolve(home=tmp_path / "down", tracking_uri=DOWN_URI, retries=0)
    source.close()
    with pytest.raises(RegistryUnavailableError):
        source.task_state(task)
    with pytest.raises(SignatureError) as refused:
        source.verify_cached(folder, trust, ref)
    assert refused.value.message == "the bundle's site key is not enrolled or was revoked"

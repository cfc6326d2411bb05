"""A real SuperLink and two SuperNodes on loopback (insecure): run, publish, refuse, lose sites.

The federation is started once for the module; the tests run in file order and the last one
crashes sites. Every process is stopped at the end and checked by PID.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.demo.local_federation import LocalFederation
from gsco_common.errors import FederationError
from gsco_common.keys import fingerprint, load_public_key, public_pem
from hub.federation.orchestrate import app_dir
from hub.federation.processes import pid_alive
from hub.federation.publish import federation_key_paths
from hub.federation.rounds import CHECKPOINTS, GLOBAL_CHECKPOINT
from hub.federation.settings import RunSettings
from registry.bundle.card import Card
from registry.bundle.layout import SITE_SIG
from registry.bundle.signing import verify_bundle
from registry.config import RegistryConfig
from registry.service import Registry
from tests.federation.helpers import site_slices

pytestmark = pytest.mark.slow

SITES = 2


@pytest.fixture(scope="module")
def federation(dev_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    workdir = tmp_path_factory.mktemp("federation")
    local = LocalFederation(workdir, RegistryConfig.resolve(home=workdir / "registry"))
    started = 0
    try:
        local.prepare_registry()
        local.start_superlink()
        for index, data in enumerate(site_slices(dev_data, workdir / "data", SITES), start=1):
            local.join(local.add_site(f"site-{index}", data))
        started = len(local.processes)
        local.wait_for_sites(SITES)
        yield local
    finally:
        pids = local.stop()
        assert not [pid for pid in pids if pid_alive(pid)]
    assert len(pids) > started, "Flower's own child processes must be tracked and stopped too"


def settings(**extra: Any) -> RunSettings:
    base = {
        "task": "pneumonia",
        "image_size": 28,
        "num_rounds": 2,
        "min_sites": SITES,
        "wait_sites_timeout": 60,
    }
    return RunSettings(**{**base, **extra})


def test_run_publishes_a_bundle_signed_by_the_hub(federation: LocalFederation, tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    outcome = federation.run(settings(), "it-run", events.append)
    rounds = [event for event in events if event["event"] == "round"]
    assert [event["round"] for event in rounds] == [1, 2]
    assert all(event["sites"] == SITES for event in rounds)
    assert rounds[1]["previous_global"]["examples"] > 0, "round 2 reports the round-1 model's evaluation"
    checkpoints = outcome.out_dir / CHECKPOINTS
    assert {path.name for path in checkpoints.iterdir()} >= {
        "round-001.pt",
        "round-002.pt",
        GLOBAL_CHECKPOINT,
    }
    result = outcome.result
    assert [site["rounds_participated"] for site in result["sites"]] == [2] * SITES
    assert 0.0 <= result["final_metrics"]["accuracy"] <= 1.0

    published = federation.publish(outcome)
    assert published.source == "federation-it-run"
    with Registry.open(federation.registry) as registry:
        bundle = registry.download_bundle(
            published.publish.name, published.publish.version, tmp_path / "bundle"
        )
    hub_key = load_public_key(federation_key_paths(federation.registry.home)[1])
    verify_bundle(bundle, public_pem(hub_key), bundle / SITE_SIG)
    card = Card.read(bundle)
    assert card.federated and card.key_fingerprint == fingerprint(hub_key)
    site_keys = {
        fingerprint(load_public_key(site.site_dir / "keys" / "site.pub")) for site in federation.sites
    }
    listed = card.data["federation"]["sites"]
    assert {entry["key_fingerprint"] for entry in listed} == site_keys
    assert all(0.0 <= entry["metrics"]["accuracy"] <= 1.0 for entry in listed)


def test_unapproved_code_is_refused_at_every_site(federation: LocalFederation, tmp_path: Path) -> None:
    altered = tmp_path / "app"
    shutil.copytree(app_dir(), altered)
    pyproject = altered / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("local-epochs = 1", "local-epochs = 2"))
    with pytest.raises(FederationError) as refused:
        federation.run(settings(), "it-unapproved", lambda _event: None, app=altered)
    assert "only 0 of the required 2 sites can take part" in refused.value.message
    assert "site refused to run unapproved code" in refused.value.message
    for site in federation.sites:
        assert "REFUSED" in site.process.log_path.read_text()
        installed = site.site_dir / "federation" / "flwr" / "apps"
        assert len(list(installed.iterdir())) == 1, "the refused app must never be installed"


def test_sites_dying_mid_run(federation: LocalFederation) -> None:
    first, second = federation.sites

    def crash_after_round_one(event: dict[str, Any]) -> None:
        if event["event"] == "round" and event["round"] == 1:
            gone = federation.crash_site(second)
            assert gone and not [pid for pid in gone if pid_alive(pid)]

    with pytest.raises(FederationError, match="round 2: only 1 of the required 2 sites remain"):
        federation.run(settings(), "it-fails", crash_after_round_one)
    assert first.process is not None and first.process.alive()

    federation.join(second)
    federation.wait_for_sites(SITES)
    # Uncompressed (exact float32 both ways, still packed), so that path runs end to end too.
    outcome = federation.run(
        settings(min_sites=1, compress_updates=False), "it-survives", crash_after_round_one
    )
    sites = sorted(outcome.result["sites"], key=lambda site: site["rounds_participated"])
    assert [site["rounds_participated"] for site in sites] == [1, 2]
    assert [site["status"] for site in sites] == ["left in round 2", "active"]
    assert sites[1]["final_metrics"] and not sites[0]["final_metrics"]

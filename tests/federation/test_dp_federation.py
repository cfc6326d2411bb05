"""DP-SGD at every site of a real federation (SuperLink and two SuperNodes on loopback).

Each site turns DP-SGD on in its own site.yaml; the hub builds the GroupNorm model
(``dp_model``). The published card's ``training.privacy`` must carry the notion that holds and,
per site, the ε that Opacus' accountant gives for the noise, sample rate and steps that ran, and
the MLflow version's tags must equal the card.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient
from opacus.accountants import RDPAccountant

from deploy.demo.local_federation import LocalFederation
from gsco_common.processes import pid_alive
from hub.federation.partition import write_site_slices
from hub.federation.settings import RunSettings
from registry.bundle.card import Card
from registry.config import RegistryConfig
from registry.service import Registry

pytestmark = pytest.mark.slow

SITES = 2
EPSILON, DELTA, BATCH = 6.0, 1e-5, 16


@pytest.fixture(scope="module")
def dp_federation(dev_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    workdir = tmp_path_factory.mktemp("dp-federation")
    local = LocalFederation(workdir, RegistryConfig.resolve(home=workdir / "registry"))
    try:
        local.prepare_registry()
        local.start_superlink()
        for index, data in enumerate(write_site_slices(dev_data, workdir / "data", SITES, 1, 160), 1):
            site = local.add_site(f"site-{index}", data)
            config_path = site.site_dir / "site.yaml"
            config = yaml.safe_load(config_path.read_text())
            config["training"]["dp"] = {"enabled": True, "epsilon": EPSILON, "delta": DELTA}
            config_path.write_text(yaml.safe_dump(config, sort_keys=False))
            local.join(site)
        local.wait_for_sites(SITES)
        yield local
    finally:
        pids = local.stop()
        assert not [pid for pid in pids if pid_alive(pid)]


def settings(**extra: Any) -> RunSettings:
    base = {
        "task": "pneumonia",
        "image_size": 28,
        "min_sites": SITES,
        "wait_sites_timeout": 60,
        "batch_size": BATCH,
        "dp_model": True,
    }
    return RunSettings(**{**base, **extra})


def opacus_epsilon(noise: float, sample_rate: float, steps: int) -> float:
    accountant = RDPAccountant()
    accountant.history = [(noise, sample_rate, steps)]
    return accountant.get_epsilon(delta=DELTA)


def published_card(federation: LocalFederation, run_settings: RunSettings, name: str) -> tuple[Card, dict]:
    """Run, publish, download: the card and the MLflow version's tags."""
    outcome = federation.run(run_settings, name, lambda event: None)
    published = federation.publish(outcome)
    with Registry.open(federation.registry) as registry:
        bundle = registry.download_bundle(
            published.publish.name, published.publish.version, federation.workdir / "downloads" / name
        )
    uri = federation.registry.mlflow_uri
    tags = (
        MlflowClient(tracking_uri=uri, registry_uri=uri)
        .get_model_version(published.publish.name, str(published.publish.version))
        .tags
    )
    return Card.read(bundle), tags


def check_sites(privacy: dict[str, Any], rounds: int) -> None:
    """Every site's ε is Opacus' for its noise, rate and all its steps; the card shows the largest."""
    assert len(privacy["sites"]) == SITES
    for site in privacy["sites"]:
        steps_per_round = math.ceil(1 / site["sample_rate"] - 1e-9)
        assert site["steps"] == rounds * steps_per_round
        expected = opacus_epsilon(site["noise_multiplier"], site["sample_rate"], site["steps"])
        assert site["epsilon"] == pytest.approx(expected, rel=1e-9)
        assert site["epsilon"] <= EPSILON and site["delta"] == DELTA
    assert privacy["epsilon"] == max(site["epsilon"] for site in privacy["sites"])


def check_tags(card: Card, tags: dict[str, str]) -> None:
    privacy = card.privacy or {}
    update = privacy.get("update_level") or {}
    assert tags["privacy.notion"] == privacy["notion"]
    assert float(tags["privacy.epsilon"]) == privacy["epsilon"]
    assert float(tags["privacy.delta"]) == privacy["delta"]
    assert tags["privacy.update_epsilon"] == ("" if not update else repr(float(update["epsilon"])))


def test_dp_sgd_at_the_sites_over_two_rounds_and_dp_at_the_hub_publishes_both(
    dp_federation: LocalFederation,
) -> None:
    """One run for the suite's time: the sample-level-only card is tested in test_federated_card.py."""
    run = settings(num_rounds=2, dp_noise_multiplier=0.8, dp_clipping_norm=5.0)
    card, tags = published_card(dp_federation, run, "dp-both")
    privacy = card.privacy
    assert privacy is not None and privacy["notion"] == "both"
    check_sites(privacy, rounds=2)  # the accountant composed both rounds' steps
    assert card.data["training"]["dp_epsilon"] == privacy["epsilon"]
    hub = card.data["federation"]["dp"]
    assert privacy["update_level"]["epsilon"] == hub["epsilon"] > 0
    assert privacy["update_level"]["noise_multiplier"] == 0.8
    check_tags(card, tags)

"""A real SuperLink and two SuperNodes on loopback (insecure): run, publish, refuse, lose sites.

The federation is started once for the module; the tests run in file order and the last one
crashes sites. Every process is stopped at the end and checked by PID.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.demo.local_federation import LocalFederation
from gsco_common.errors import FederationError
from gsco_common.keys import fingerprint, load_public_key, public_pem
from gsco_common.processes import pid_alive
from hub.federation import orchestrate
from hub.federation.flwr_cli import venv_bin
from hub.federation.orchestrate import app_dir
from hub.federation.publish import federation_key_paths
from hub.federation.rounds import CHECKPOINTS, GLOBAL_CHECKPOINT
from hub.federation.settings import RunSettings
from registry.bundle.card import Card
from registry.bundle.layout import SITE_SIG
from registry.bundle.provenance import combined_digest, source_digest
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


LIFECYCLE = ["pending", "starting", "running", "finished:completed"]
"""Flower's run states in the order a successful run passes through them."""


class ObservedSuperLink:
    """The federation's real ``FlowerCli``, logging in order every status it answered and every event."""

    def __init__(self, federation: LocalFederation) -> None:
        self.cli = federation.flwr
        self.home = self.cli.home
        self.log: list[tuple[str, str]] = []

    def submit(self, app: Path, run_config: Path) -> int:
        return self.cli.submit(app, run_config)

    def status(self, run_id: int) -> dict[str, Any]:
        answer = self.cli.status(run_id)
        self.log.append(("status", str(answer["status"])))
        return answer

    def stop(self, run_id: int) -> None:
        self.cli.stop(run_id)

    def event(self, event: dict[str, Any]) -> None:
        self.log.append(("event", str(event["event"])))


def test_run_publishes_a_bundle_signed_by_the_hub(
    federation: LocalFederation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ask often until the ServerApp reports, then never again until it says it is done.
    monkeypatch.setattr(orchestrate, "STATUS_EVERY_S", 0.2)
    monkeypatch.setattr(orchestrate, "STATUS_WHILE_REPORTING_S", 3600.0)
    superlink = ObservedSuperLink(federation)
    events: list[dict[str, Any]] = []

    def on_event(event: dict[str, Any]) -> None:
        superlink.event(event)
        events.append(event)

    run_settings = settings(out_dir=str(federation.workdir / "runs" / "it-run"))
    outcome = orchestrate.run_federation(superlink, run_settings, "it-run", on_event)  # type: ignore[arg-type]
    kinds = [kind for kind, _ in superlink.log]
    first_report = kinds.index("event", 1)  # the first is the orchestrator's own "submitted"
    terminal = superlink.log.index(("event", "completed"))
    before = [state for kind, state in superlink.log[:first_report] if kind == "status"]
    reporting = [state for kind, state in superlink.log[first_report:terminal] if kind == "status"]
    closing = [state for kind, state in superlink.log[terminal:] if kind == "status"]
    assert before and "finished:completed" not in before, "polled while the ServerApp was starting"
    # While it reports: at most the look already due. After its "completed": asked until the
    # SuperLink itself says finished (it may still say running for a moment under load).
    assert reporting in ([], ["running"])
    assert closing[-1] == "finished:completed" and set(closing[:-1]) <= {"running"}
    states = before + reporting + closing
    assert set(states) <= set(LIFECYCLE)
    assert [LIFECYCLE.index(state) for state in states] == sorted(LIFECYCLE.index(state) for state in states)

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
    # each site's training-set digest, as a local card of that site's data would record it
    trained_on = {
        fingerprint(load_public_key(site.site_dir / "keys" / "site.pub")): source_digest(
            Path(yaml.safe_load((site.site_dir / "site.yaml").read_text())["data"]["path"]), "train"
        )
        for site in federation.sites
    }
    training_sets = card.data["federation"]["training_sets"]
    assert {entry["key_fingerprint"]: entry["training_set_digest"] for entry in training_sets} == trained_on
    assert card.training_set_digest == combined_digest(trained_on.values())


def test_the_hub_cli_follows_a_run_to_its_end_and_publishes(federation: LocalFederation) -> None:
    assert federation.superlink is not None
    done = subprocess.run(
        [venv_bin("gsco-hub"), "--home", str(federation.registry.home), "federation", "run"]
        + ["--task", "pneumonia", "--rounds", "1", "--image-size", "28", "--name", "it-cli", "--json"]
        + ["--superlink", federation.superlink.address, "--insecure"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["run"] == "it-cli"
    assert report["out_dir"] == str(federation.registry.home / "federation" / "runs" / "it-cli")
    assert [site["rounds_participated"] for site in report["result"]["sites"]] == [1] * SITES
    assert report["bundle"]["source"] == "federation-it-cli"
    with Registry.open(federation.registry) as registry:
        version = registry.version(report["bundle"]["name"], report["bundle"]["version"])
    assert version.source == "federation-it-cli"


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

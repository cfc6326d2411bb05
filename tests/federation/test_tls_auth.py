"""TLS and SuperNode authentication on loopback: registered sites train (with DP), a stranger is refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from deploy.demo.local_federation import LocalFederation
from gsco_common.keys import fingerprint
from hub.federation.settings import RunSettings
from tests.federation.helpers import site_slices

pytestmark = pytest.mark.slow


def test_tls_with_supernode_authentication(
    dev_data: Path, make_federation: Callable[..., LocalFederation], tmp_path: Path
) -> None:
    federation = make_federation(tls=True)
    superlink = federation.start_superlink()
    assert "--enable-supernode-auth" in superlink.command() and "--insecure" not in superlink.command()
    first, second, stranger = site_slices(dev_data, tmp_path / "data", 3)
    sites = [federation.add_site("site-1", first), federation.add_site("site-2", second)]
    intruder = federation.add_site("intruder", stranger, register=False)
    for site in sites:
        federation.join(site)
    federation.wait_for_sites(2)
    federation.join(intruder)
    deadline = time.monotonic() + 120
    while intruder.process is not None and intruder.process.alive() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert intruder.process is not None and not intruder.process.alive(), (
        "an unregistered key must be refused"
    )
    assert intruder.process.popen.returncode != 0
    assert "SuperNode exited (Flower exit code 305)" in intruder.process.log_path.read_text()

    events: list[dict[str, Any]] = []
    # With client-side DP, so that clipping, exact DP replies and the accounting run end to end.
    settings = RunSettings(
        task="pneumonia",
        image_size=28,
        num_rounds=1,
        min_sites=2,
        wait_sites_timeout=60,
        dp_noise_multiplier=0.5,
        dp_clipping_norm=1.0,
    )
    outcome = federation.run(settings, "tls-run", events.append)
    registered = {
        fingerprint(load_ssh_public_key((site.site_dir / "keys" / "supernode_key.pub").read_bytes()))
        for site in sites
    }
    assert {site["node_fingerprint"] for site in outcome.result["sites"]} == registered
    assert [event["round"] for event in events if event["event"] == "round"] == [1]
    dp = outcome.result["dp"]
    assert dp["releases"] == 1 and dp["epsilon"] is not None and dp["epsilon"] > 0
    assert dp["clipping_norm"] == 1.0 and dp["delta"] == settings.dp_delta

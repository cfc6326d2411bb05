"""deploy/systemd: the site's SuperNode service and the scheduled training, checked statically.

`systemd-analyze verify` (when installed) on copies whose ExecStart points at this venv's entry
points, plus what verify does not judge: the command is a real `site-agent` subcommand with
accepted options, the service runs as a non-root user, restarts (SuperNode), and is hardened;
training runs without network.
"""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.cli_lines import ROOT, check_line

UNITS = ROOT / "deploy" / "systemd"
PREFIX = "/opt/gsco/bin/"  # the venv of deploy/docker's images (/opt/gsco), same layout on a host
SERVICES = ("gsco-supernode.service", "gsco-train.service")
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  (systemd keys are case-sensitive)
    parser.read_string((UNITS / name).read_text())
    return parser


def _exec_start(name: str) -> list[str]:
    return shlex.split(_unit(name)["Service"]["ExecStart"])


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_runs_a_real_site_agent_command(name: str) -> None:
    words = _exec_start(name)
    assert words[0].startswith(PREFIX)
    assert check_line(" ".join([words[0].removeprefix(PREFIX), *words[1:]])) == []


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_runs_unprivileged_and_hardened(name: str) -> None:
    service = _unit(name)["Service"]
    assert service["User"] not in ("", "root", "0") and service["Group"] not in ("", "root", "0")
    assert {key: service.get(key) for key in HARDENING} == HARDENING
    assert service["ReadWritePaths"] == "/var/lib/gsco"


def test_the_supernode_restarts_and_waits_for_the_network() -> None:
    unit = _unit("gsco-supernode.service")
    assert unit["Service"]["Restart"] == "on-failure" and int(unit["Service"]["RestartSec"]) > 0
    assert unit["Unit"]["After"] == "network-online.target"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_training_is_a_oneshot_without_network_started_by_the_timer() -> None:
    service = _unit("gsco-train.service")
    assert service["Service"]["Type"] == "oneshot" and service["Service"]["PrivateNetwork"] == "yes"
    assert service["Unit"]["Conflicts"] == "gsco-supernode.service"
    timer = _unit("gsco-train.timer")["Timer"]
    assert timer["Unit"] == "gsco-train.service" and (UNITS / timer["Unit"]).is_file()
    assert timer["Persistent"] == "true" and timer["OnCalendar"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    venv_bin = str(Path(sys.executable).parent) + "/"
    for unit in UNITS.iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace(PREFIX, venv_bin))
    files = sorted(str(path) for path in tmp_path.iterdir())
    verify = subprocess.run(["systemd-analyze", "verify", *files], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr

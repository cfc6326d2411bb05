"""The demo's SERVE step (``deploy/demo/serve.sh``): the service runs, the URL and the token work."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from gsco_common.net import free_port
from tests.site_bundle import SiteBundle, make_real_world, publish_real

SERVE = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "serve.sh"


def test_serve_step_prints_the_page_url_and_a_clinician_token_that_work(
    tmp_path: Path, real_specialists: tuple[SiteBundle, ...]
) -> None:
    world = make_real_world(tmp_path, real_specialists)
    task = world.new_task()
    publish_real(world, task, real_specialists[0])
    port = free_port()
    env = {
        **os.environ,
        "GSCO_HOME": str(world.config.home),
        "PORT": str(port),
        "BIN": str(Path(sys.executable).parent),
    }
    process = subprocess.Popen(
        ["bash", str(SERVE)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        printed = [process.stdout.readline() for _ in range(3)]
        page = re.fullmatch(r"The hub is serving\. Open the clinicians' page: (\S+)\n", printed[0])
        token = re.fullmatch(r"Sign in with this clinician token \(shown once\): (\S+)\n", printed[1])
        assert page and token, "".join(printed) + process.stderr.read() if process.poll() is not None else ""
        assert page.group(1) == f"http://127.0.0.1:{port}/"
        html = httpx.get(page.group(1))
        assert html.status_code == 200
        assert "Decision support, not for use without clinician review" in html.text
        tasks = httpx.get(page.group(1) + "v1/tasks", headers={"Authorization": f"Bearer {token.group(1)}"})
        assert tasks.status_code == 200
        assert [t["task_id"] for t in tasks.json()["tasks"]] == [task]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # the service stopped with the script
